"""The one settings table: every knob of ttsops, its default and its help.

Each setting is read from the environment as ``TTSOPS_<NAME>`` (upper case). The
seed-compatible ``REQUEST_ID_HEADER`` is accepted without the prefix too. The README's
settings reference is generated from this table (``ttsops settings --markdown``).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .knobrows import KNOBS


def _knob(name: str) -> Any:
    """The field of a row declared in ``knobs.KNOBS`` (read there without pydantic)."""
    k = KNOBS[name]
    return Field(k.default, ge=k.ge, gt=k.gt, le=k.le, description=k.description)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TTSOPS_", extra="ignore")

    # --- logging -------------------------------------------------------------------
    log_dir: Path = Field(Path("logs"),
                          description="Directory of app.log and its rotated .gz files.")
    log_format: Literal["text", "json"] = Field(
        "text", description="text (grep/awk friendly) or json (one object per line).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level written.")
    log_max_bytes: int = Field(64 * 1024 * 1024, ge=4096,
                               description="Rotate app.log when it reaches this size (bytes).")
    log_backup_count: int = Field(30, ge=1, description="How many app.log.N.gz files to keep.")
    log_block_bytes: int = Field(1024 * 1024, ge=1024,
                                 description="Uncompressed size of each gzip member (index block).")
    log_utc: bool = _knob("log_utc")
    log_ship_url: str = Field("", description="Ship each rotated log file to ClickHouse "
                                              "once it is complete (clickhouse://host/db"
                                              "[?cluster=NAME]; empty: off). Needs "
                                              "ttsops[clickhouse].")
    log_ship_interval_s: float = Field(30.0, gt=0, description="How often the shipper "
                                                               "looks for rotated files "
                                                               "(doubled on failure, up "
                                                               "to 10 min).")
    log_stderr: bool = Field(False, description="Also echo every record to stderr.")
    log_text: Literal["preview", "hash", "none"] = Field(
        "preview", description="How input text appears in logs: a short escaped preview, "
                               "a hash only, or not at all.")
    log_text_preview_chars: int = Field(32, ge=0, description="Length of the text preview.")
    logs_workers: int = _knob("logs_workers")
    logs_vector: Literal["auto", "always", "never"] = _knob("logs_vector")
    logs_sidecar: Literal["auto", "read", "off"] = _knob("logs_sidecar")
    logs_progress_bytes: int = _knob("logs_progress_bytes")
    request_id_header: str = Field(
        "X-Request-ID", validation_alias=AliasChoices("TTSOPS_REQUEST_ID_HEADER",
                                                      "REQUEST_ID_HEADER"),
        description="Header carrying the caller's request id (env REQUEST_ID_HEADER "
                    "also accepted); generated when absent, always echoed.")

    # --- serving -------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `ttsops serve` binds.")
    port: int = Field(8000, description="Port `ttsops serve` binds.")
    engine: str = Field("espeak", description="Engine: espeak (embedded), fake, piper, indextts2.")
    workers: int = Field(0, ge=0, description="Engine worker processes (0: one per core; GPU "
                                              "engines: one per GPU).")
    queue_size: int = Field(32, ge=1, description="Syntheses waiting for a worker before 429 "
                                                 "QUEUE_FULL.")
    request_timeout_s: float = Field(60.0, gt=0, description="Per-synthesis limit before 504 "
                                                             "SYNTHESIS_TIMEOUT.")
    model_load_timeout_s: float = Field(600.0, gt=0, description="Engine/model load limit "
                                                                 "before MODEL_LOAD_TIMEOUT.")
    max_input_chars: int = Field(4096, ge=1, description="Longest accepted input text.")
    segment_max_chars: int = Field(300, ge=20, description="Long text is split into sentences "
                                                          "and packed into segments of at most "
                                                          "this many characters.")
    audio_target_dbfs: float = Field(-20.0, le=0, description="Loudness target: RMS of the "
                                                              "voiced part of the audio (dBFS).")
    audio_peak_dbfs: float = Field(-1.0, le=0, description="Peak ceiling after loudness "
                                                           "normalisation (clipping guard).")
    audio_tail_silence_ms: float = Field(200.0, ge=0, le=5000, description="Silence added "
                                         "after the last word, so that players do not clip "
                                         "it (ms).")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest accepted request body.")
    voice_fallback: bool = Field(False, description="Unknown voice falls back to the default "
                                                    "with a WARNING instead of 400.")
    api_keys: str = Field("", description="Comma-separated bearer tokens; empty disables auth.")
    cors_origins: str = Field("", description="Origins whose browser apps may call the API "
                                              "(CORS): comma-separated, or * for any; empty: "
                                              "none.")
    rate_limit_per_minute: int = Field(0, ge=0, description="Requests per client per minute "
                                                            "(0: unlimited).")
    trusted_proxies: str = Field("", description="Comma-separated IPs/CIDR networks of "
                                 "reverse proxies whose X-Forwarded-For is believed (empty: "
                                 "none; the client is the socket peer).")
    webui_events_per_minute: int = Field(60, ge=0, description="Web page playback reports "
                                         "(POST /v1/webui/events) per client per minute "
                                         "(0: unlimited).")
    webui_event_key: str = Field("", description="Secret that signs the synthesis tokens the "
                                 "web page reports with (empty: a random key per process; set "
                                 "the same key on replicas behind one load balancer).")
    max_audio_s: float = Field(600.0, gt=0, description="Longest audio one request may "
                               "produce (s): refused before synthesis when the text would "
                               "clearly exceed it, stopped during it otherwise "
                               "(AUDIO_TOO_LONG).")
    header_timeout_s: float = Field(10.0, gt=0, description="A connection must send a "
                                    "request's headers within this time (else 408, closed).")
    body_timeout_s: float = Field(15.0, gt=0, description="A request's body must arrive "
                                  "within this time after its headers (else 408, closed).")
    shutdown_grace_s: float = Field(30.0, ge=0, description="On SIGTERM: time in-flight "
                                    "syntheses get to finish before they are cut (503 "
                                    "SHUTTING_DOWN).")

    # --- cache ---------------------------------------------------------------------
    cache_dir: Path = Field(Path("cache"), description="Audio cache directory.")
    cache_enabled: bool = Field(True, description="Use the audio cache.")
    cache_max_mb: float = Field(512.0, gt=0, description="Cache size budget (MB).")
    cache_high_watermark: float = Field(
        0.9, gt=0, le=1, description="Evict when the cache exceeds this share of its budget.")
    cache_low_watermark: float = Field(0.7, gt=0, le=1, description="Evict down to this share.")
    cache_memory_mb: float = Field(
        64.0, ge=0, description="Verified cache entries kept in memory (MB; 0: none): a hit "
                                "on one skips reading and checksumming its file.")
    cache_health_interval_s: float = Field(300.0, gt=0, description="cache_health report period.")
    cache_disk_warn_percent: float = _knob("cache_disk_warn_percent")

    # --- engines -------------------------------------------------------------------
    piper_voice_dir: Path | None = Field(None, description="Directory of Piper .onnx voices.")
    indextts_model_dir: Path | None = Field(None, description="IndexTTS-2 checkpoint directory.")
    indextts_cfg: Path | None = Field(None, description="IndexTTS-2 config.yaml "
                                                        "(default: <model_dir>/config.yaml).")
    indextts_voices: Path | None = Field(None, description="TOML file naming reference "
                                                           "recordings as voices.")
    piper_threads: int = Field(1, ge=0, description="onnxruntime threads per Piper worker "
                                                   "(0: onnxruntime's default, all cores).")
    indextts_fp16: bool = Field(True, description="IndexTTS-2: half precision on CUDA (about "
                                                  "half the GPU memory; ignored on CPU).")
    indextts_cuda_kernel: bool = Field(False, description="IndexTTS-2: BigVGAN's fused CUDA "
                                                          "kernel (needs a CUDA toolchain).")
    indextts_deepspeed: bool = Field(False, description="IndexTTS-2: DeepSpeed for the GPT "
                                                        "(if installed).")
    indextts_max_text_tokens: int = Field(120, ge=20, description="IndexTTS-2: "
                                          "max_text_tokens_per_segment inside one segment.")
    indextts_interval_silence_ms: int = Field(200, ge=0, description="IndexTTS-2: silence "
                                              "between the model's own sub-segments (ms).")
    device: str = Field("auto", description="Device for neural engines: auto, cpu, cuda, cuda:N.")
    fake_delay_ms: float = Field(0.0, ge=0, description="Fake engine: extra time per synthesis.")
    fake_load_ms: float = Field(0.0, ge=0, description="Fake engine: time its load() takes.")
    fake_load_fail: bool = Field(False, description="Fake engine: load() fails with "
                                                    "MODEL_LOAD_FAILED (for tests).")
    espeak_data_path: Path | None = Field(None, description="eSpeak NG data directory "
                                                            "(default: the espeakng-loader "
                                                            "wheel's own).")


    @field_validator("logs_vector", "logs_sidecar", mode="before")
    @classmethod
    def _choice(cls, v: object) -> object:
        return v.strip().lower() if isinstance(v, str) else v  # as knobs.Knob.parse

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: str) -> str:
        parse_networks(v)  # ValueError names the bad item
        return v


def parse_networks(spec: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``TTSOPS_TRUSTED_PROXIES``: ``"10.0.0.1, 10.1.0.0/16"`` -> networks; ValueError
    names a bad item (here, not in ``server/clientaddr.py``, which uses it: the table
    is below the server)."""
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {item!r}") from None
    return nets


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def settings_table() -> list[tuple[str, str, str]]:
    """(environment variable, default, help) for every setting, in table order."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "" if default is None else str(default).lower() if isinstance(default, bool) \
            else str(default)
        env = f"TTSOPS_{name.upper()}"
        if name == "request_id_header":
            env += " (or REQUEST_ID_HEADER)"
        rows.append((env, shown, field.description or ""))
    return rows
