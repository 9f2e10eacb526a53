"""The feature keys of a record, each spelled once (no TensorFlow here: preprocessing workers import it).

The schema in prose is records/README.md; `emotf.records.schema` writes and parses records with these keys.
"""

SPEC = "spec/encoded"
SPEC_HEIGHT = "spec/height"
SPEC_WIDTH = "spec/width"
VIDEO = "video/encoded"
VIDEO_ENCODING = "video/encoding"
VIDEO_FRAMES = "video/frames"
VIDEO_HEIGHT = "video/height"
VIDEO_WIDTH = "video/width"
VIDEO_FACE_FOUND = "video/face_found"
LABEL_INDEX = "label/index"
LABEL_NAME = "label/name"
LABEL_RAW = "label/raw"
SPEAKER = "speaker"
SESSION = "session"
GENDER = "gender"
UTT_ID = "utt_id"
CLIP_INDEX = "clip/index"
CLIP_COUNT = "clip/count"
CLIP_START = "clip/start_s"
CLIP_END = "clip/end_s"
CORPUS = "corpus"
MODE = "mode"
SCHEMA = "schema_version"
# The "wave" variant's waveform: int16 PCM, little-endian, mono, at its rate. Written only in records that have a
# waveform, so the spectrogram records' bytes (and their digests) are those of before these keys existed.
WAVE = "wave/pcm16"
WAVE_SAMPLES = "wave/samples"
WAVE_RATE = "wave/rate"

STRING_KEYS = (LABEL_NAME, LABEL_RAW, SPEAKER, SESSION, GENDER, UTT_ID, CORPUS, MODE, VIDEO_ENCODING)
INT_KEYS = (SPEC_HEIGHT, SPEC_WIDTH, LABEL_INDEX, CLIP_INDEX, CLIP_COUNT, SCHEMA,
            VIDEO_FRAMES, VIDEO_HEIGHT, VIDEO_WIDTH, VIDEO_FACE_FOUND)
FLOAT_KEYS = (CLIP_START, CLIP_END)
WAVE_INT_KEYS = (WAVE_SAMPLES, WAVE_RATE)
