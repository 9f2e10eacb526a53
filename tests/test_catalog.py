"""The one table of architectures, and the named choices."""

import pytest

from emotf import catalog
from emotf.config import TrainConfig


def test_every_architecture_has_a_modality_epochs_and_a_builder():
    pytest.importorskip("keras")
    for name, arch in catalog.ARCHS.items():
        assert arch.name == name and arch.modality in catalog.MODALITIES and arch.default_epochs > 0
        assert arch.build_fn().__name__ == f"build_{name}"
    assert TrainConfig(arch="cnn_lstm").num_epochs == 20 and TrainConfig(arch="av").modality == "av"
    with pytest.raises(ValueError, match="unknown architecture"):
        catalog.arch("resnet")


def test_the_catalog_needs_no_framework():
    import subprocess
    import sys

    code = ("import sys, emotf.catalog, emotf.config, emotf.cli, emotf.runs, emotf.records.folder, "
            "emotf.pretrained; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
