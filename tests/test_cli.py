"""The command lines share one definition of the training flags; their choices come from the catalog."""

import dataclasses

import pytest

from emotf import catalog, cli, fit, preprocess, tune
from emotf.config import TrainConfig
from emotf.tuning.search import NOT_SEARCH_FLAGS, SearchConfig


def _flags(parser) -> dict[str, object]:
    return {a.dest: a for a in parser._actions if a.option_strings}


def test_every_train_config_field_is_a_flag_of_fit_and_of_tune_unless_tune_names_it():
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"model"}  # model: filled by --hparams
    fit_flags, tune_flags = _flags(fit.build_parser()), _flags(tune.build_parser())
    assert fields <= set(fit_flags)
    assert fields - set(NOT_SEARCH_FLAGS) <= set(tune_flags)
    assert not set(NOT_SEARCH_FLAGS) & set(tune_flags)
    assert {f.name for f in dataclasses.fields(SearchConfig)} <= set(tune_flags)
    for name in fields - set(NOT_SEARCH_FLAGS):  # the same flag, with the same default and choices, in both
        a, b = fit_flags[name], tune_flags[name]
        assert (a.option_strings, a.default, a.choices) == (b.option_strings, b.default, b.choices), name


def test_choices_are_generated_from_the_catalog():
    flags = _flags(fit.build_parser())
    assert tuple(flags["arch"].choices) == tuple(catalog.ARCHS)
    assert tuple(flags["audio_arch"].choices) == catalog.AUDIO_BRANCHES == ("cnn", "cnn_rnn", "cnn_lstm", "crnn",
                                                                                "whisper_tiny")
    assert tuple(flags["classes"].choices) == catalog.CLASS_CHOICES
    assert tuple(flags["split"].choices) == catalog.SPLIT_SCHEMES
    assert tuple(flags["colormap"].choices) == catalog.COLORMAPS
    pre = _flags(preprocess.build_parser())
    assert tuple(pre["variant"].choices) == tuple(catalog.VARIANTS)
    assert tuple(pre["classes"].choices) == catalog.CLASS_CHOICES


def test_flags_map_back_onto_the_config():
    argv = ["--arch", "crnn", "--augment", "crop,rotate", "--fold", "2", "--jit-compile", "off"]
    cfg = cli.train_config(fit.build_parser().parse_args(argv), argv)
    assert (cfg.arch, cfg.augment, cfg.fold, cfg.jit_compile) == ("crnn", ("crop", "rotate"), 2, "off")
    assert cli.train_config(fit.build_parser().parse_args([]), []) == TrainConfig()
    args = tune.build_parser().parse_args(["--tuner", "random", "--max-trials", "3", "--patience", "2"])
    assert cli.config_from_args(args, SearchConfig) == SearchConfig(tuner="random", max_trials=3)
    assert cli.train_config(args, []).patience == 2  # a trial's early stopping is the training flag
    with pytest.raises(SystemExit):
        fit.build_parser().parse_args(["--arch", "resnet"])
    with pytest.raises(ValueError, match="augment takes"):
        cli.train_config(fit.build_parser().parse_args(["--augment", "flip"]), [])


def test_xla_auto_is_on_for_training_on_a_gpu_and_off_on_cpu_and_in_searches():
    from emotf.training.runtime import resolve_jit

    assert resolve_jit("auto", gpu=True) is True and resolve_jit("auto", gpu=True, arch="cnn_rnn") is True
    assert resolve_jit("auto", gpu=True, search=True) is False  # what a search then writes in its config.json, too
    assert resolve_jit("auto", gpu=True, strategy="mirrored") is False
    assert resolve_jit("auto", gpu=True, backend="jax") is False
    assert resolve_jit("on", search=True) is True and resolve_jit("off", gpu=True) is False
    # on a CPU XLA was measured slower for every architecture it was measured for (emotf.catalog: xla)
    assert [a for a in catalog.ARCHS if resolve_jit("auto", arch=a)] == [a for a, x in catalog.ARCHS.items() if x.xla]
    assert resolve_jit("auto", arch="cnn_rnn") is False and resolve_jit("auto", arch="logmel_cnn") is False
    assert resolve_jit("on", arch="logmel_cnn") is True
    with pytest.raises(ValueError):
        resolve_jit("yes")


def test_augment_all_takes_what_fits_the_arch_s_input():
    assert TrainConfig(arch="logmel_cnn", augment=("all",)).augment == catalog.WAVE_AUGMENTATIONS
    assert TrainConfig(arch="cnn", augment=("all",)).augment == catalog.IMAGE_AUGMENTATIONS
    with pytest.raises(ValueError, match="for cnn"):
        TrainConfig(arch="cnn", augment=("mixup",))
    argv = ["--arch", "logmel_cnn", "--augment", "all"]
    assert cli.train_config(fit.build_parser().parse_args(argv), argv).augment == catalog.WAVE_AUGMENTATIONS


def test_an_arch_s_own_training_defaults_apply_below_flags_and_hparams(tmp_path):
    recipe = catalog.ARCHS["logmel_cnn"].train_defaults
    argv = ["--arch", "logmel_cnn"]
    cfg = cli.train_config(fit.build_parser().parse_args(argv), argv)
    assert cfg == TrainConfig.for_arch("logmel_cnn") and cfg.lr == recipe["lr"] and cfg.augment == recipe["augment"]
    hp = tmp_path / "hp.json"
    hp.write_text('{"lr": 0.002, "weight_decay": 0.1, "channels": [8, 8, 8, 8]}')
    argv = ["--arch", "logmel_cnn", "--weight-decay", "0.2", "--augment", "none", "--hparams", str(hp)]
    args = fit.build_parser().parse_args(argv)
    cfg = cli.train_config(args, argv, hparams=args.hparams)
    assert (cfg.lr, cfg.weight_decay, cfg.augment, cfg.batch_size) == (0.002, 0.2, (), recipe["batch_size"])
    assert cfg.model == {"channels": [8, 8, 8, 8]}
    assert not catalog.ARCHS["cnn_rnn"].train_defaults  # the paper's models keep the paper's settings
    argv = ["--arch", "whisper_tiny"]  # its head fitted on cached states, levelled; a search's trials stream
    own = cli.train_config(fit.build_parser().parse_args(argv), argv)
    assert (own.head_fit, own.views, own.model) == ("linear", 4, {"level_dbfs": -25.0})
    hp.write_text('{"fc_units": 8, "level_dbfs": null}')  # an hparams file's builder arguments go over the arch's
    argv = ["--arch", "whisper_tiny", "--hparams", str(hp)]
    assert cli.train_config(fit.build_parser().parse_args(argv), argv, hparams=str(hp)).model == {
        "level_dbfs": None, "fc_units": 8}
    argv = ["--arch", "whisper_tiny", "--head-fit", "stream"]  # streamed: the linear head's views do not apply
    assert cli.train_config(fit.build_parser().parse_args(argv), argv).views == 0
    assert TrainConfig.for_arch("whisper_tiny", head_fit="stream").views == 0
    argv = ["--arch", "whisper_tiny"]
    searched = cli.train_config(tune.build_parser().parse_args(argv), argv, search=True)
    assert (searched.head_fit, searched.views, searched.model) == ("stream", 0, {})
    assert searched.lr == catalog.WHISPER_RECIPE["lr"]


@pytest.mark.parametrize("command", [preprocess, fit, tune])
def test_every_option_says_what_it_does_and_its_default(command):
    p = command.build_parser()
    options = [a for a in p._actions if a.option_strings and a.dest != "help"]
    assert [a.option_strings[-1] for a in options if not a.help] == []
    text = p.format_help()
    assert "(default:" in text


def test_tensorflow_start_up_notices_are_left_out_and_other_lines_pass(capfd):
    import subprocess
    import sys

    code = ("import os, sys; from emotf import cli; cli.setup_logging(tensorflow=True); "
            "os.write(2, b'a line of ours\\n')")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stderr
    assert err.splitlines() == ["a line of ours"]
    assert cli._TF_NOISE.search("I0000 port.cc:153] oneDNN custom operations are on. You may see")
    assert not cli._TF_NOISE.search("E0000 something else went wrong")
