"""The simulator's scenarios and the service it imitates (voices, texts, formats,
clients, the cache disk).

Scenarios (several may be combined; ``incident`` = the four symptoms + disk):

* ``webui``      -- symptom 1: the web page reports playback errors (Safari autoplay)
* ``failures``   -- symptom 2: a client's 2048-char texts fail with SCIPY_FFT_INVALID
                    in llm_postproc; the failure rate in that hour rises to ~15%
* ``queue``      -- symptom 3: latency 0.8 s -> 3.2 s from queue wait, stages unchanged
* ``model_load`` -- symptom 4: at 03:00 the model fails to load (traceback); requests
                    fail with ENGINE_NOT_READY until a reload succeeds
* ``disk_full``  -- cache-disk usage creeps up with cache_dir_usage WARNINGs for hours,
                    then DISK_FULL errors and CACHE_WRITE_FAILED warnings
* ``audio``      -- muffled audio (low spectral centroid) for one voice for a while
* ``slow_stage`` -- llm_inference four times slower for a while
"""

from __future__ import annotations

SCENARIOS = ("webui", "failures", "queue", "model_load", "disk_full", "audio", "slow_stage")
INCIDENT = ("webui", "failures", "queue", "model_load", "disk_full", "audio")

# Where each scenario sits, as fractions of the simulated duration (start, end). With
# the default --start midnight and --duration 1d: model load 03:00, disk 06:00-10:05,
# failures 14:00-15:00 (the seed's afternoon), queue 16:48-17:45, ...
WINDOWS = {
    "model_load": (0.125, 0.145),
    "disk_creep": (0.25, 0.40),
    "disk_full": (0.40, 0.42),
    "failures": (14 / 24, 15 / 24),
    "queue": (0.70, 0.74),
    "audio": (0.78, 0.82),
    "webui": (0.85, 0.90),
    "slow_stage": (0.92, 0.95),
}

VOICES = {  # voice -> (weight, spectral centroid baseline Hz)
    "alloy": (30, 2300.0), "echo": (15, 1950.0), "fable": (10, 2450.0),
    "onyx": (15, 1550.0), "nova": (20, 2750.0), "shimmer": (10, 2950.0),
}
TEXTS = {
    "zh": ["今天天气真好，我们去公园散步吧。", "欢迎使用语音合成服务。", "请在听到提示音后留言。",
           "您的订单已经发货，预计明天送达。", "第三章：夜色渐深，城市的灯火一盏盏亮起。"],
    "en": ["The quick brown fox jumps over the lazy dog. ", "Your package has shipped, "
           "and should arrive tomorrow. ", "Welcome back! Here is today's summary. ",
           "Chapter three: the night grew darker, and the lights came on one by one. "],
}
FORMATS = (("mp3", 70), ("wav", 10), ("opus", 10), ("flac", 5), ("pcm", 5))
CLIENTS = ("10.0.3.17", "10.0.3.22", "10.0.7.5", "10.0.9.41", "192.168.1.20")
CACHE_TOTAL_MB = 20480
WARN_PERCENT = 90.0
CACHE_PATH = "/app/cache"
SAFARI_NOT_ALLOWED = ("NotAllowedError: play() failed because the user didn't interact "
                      "with the document first.")
