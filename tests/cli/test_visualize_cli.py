"""deconvnet-visualize: in-process runs on a saved tiny DeconvNet, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.cli import visualize as cli
from deconvnet_tf.render import save_png
from tests.cli.corpus import assert_one_line_error, run_main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("viz")
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3)
    path = root / "tiny.keras"
    model.save(path)
    rng = np.random.default_rng(0)
    images = root / "images"
    for i in range(4):
        save_png(images / f"im{i}.png", rng.integers(0, 256, (24, 32, 3)).astype("uint8"))
    return root, path, images


def test_cli_writes_a_grid(setup, capsys):
    import cv2

    root, model, images = setup
    out = root / "grid.png"
    rc = cli.main(["--model", str(model), "--layer", "block2_conv1_relu", "--channel", "3",
                   "--input", str(images), "--output", str(out), "--top-k", "4"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "block2_conv1_relu channel 3" in text and f"Wrote {out}" in text and "4 images" in text
    grid = cv2.imread(str(out))
    assert grid is not None and grid.shape[2] == 3 and grid.shape[0] > 48


def test_cli_top_channels_from_one_file_in_guided_mode(setup, capsys):
    root, model, images = setup
    out = root / "channels.png"
    rc = cli.main(["--model", str(model), "--layer", "block3_conv2", "--top-channels", "2",
                   "--input", str(images / "im0.png"), "--output", str(out), "--mode", "guided",
                   "--top-k", "3"])
    assert rc == 0 and out.is_file()
    assert capsys.readouterr().out.count("block3_conv2 channel") == 2


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--layer", "nope", "--channel", "0"], "no layer named 'nope'. Layers that can be projected: preprocessing, block1_conv1"),
        (["--layer", "block1_conv1", "--channel", "99"], "channel 99 is out of range for layer 'block1_conv1', which has 8 channels"),
        (["--layer", "block1_conv1", "--top-channels", "9"], "top_channels must be in 1..8"),
    ],
)
def test_cli_library_errors_exit_2(setup, capsys, extra, message):
    root, model, images = setup
    rc = cli.main(["--model", str(model), "--input", str(images), "--output", str(root / "x.png"), *extra])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("deconvnet-visualize: error: ") and message in err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--layer", "block1_conv1", "--channel", "0", "--top-channels", "2"], "not allowed with argument"),
        (["--layer", "block1_conv1"], "one of the arguments --channel --top-channels is required"),
        (["--layer", "block1_conv1", "--channel", "0", "--mode", "occlusion"], "invalid choice"),
        (["--layer", "block1_conv1", "--channel", "0", "--top-k", "0"], "expected an integer >= 1"),
    ],
)
def test_cli_usage_errors(setup, capsys, argv, message):
    root, model, images = setup
    with pytest.raises(SystemExit) as info:
        cli.main(["--model", str(model), "--input", str(images), "--output", str(root / "x.png"), *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_bad_paths(setup, capsys):
    root, model, images = setup
    assert cli.main(["--model", str(root / "missing.keras"), "--layer", "a", "--channel", "0",
                     "--input", str(images), "--output", str(root / "x.png")]) == 2
    assert "Model file not found" in capsys.readouterr().err
    assert cli.main(["--model", str(model), "--layer", "block1_conv1", "--channel", "0",
                     "--input", str(root / "nothing"), "--output", str(root / "x.png")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--model", str(model), "--layer", "block1_conv1", "--channel", "0",
                  "--input", str(images), "--output", str(root / "x.jpg")])
    assert exit_.value.code == 2
    assert "expected a .png file name" in capsys.readouterr().err


def test_cli_output_needs_overwrite_and_is_not_read_back(setup, tmp_path):
    import cv2

    root, model, images = setup
    folder = tmp_path / "imgs"
    for path in sorted(images.iterdir()):
        save_png(folder / path.name, cv2.imread(str(path))[..., ::-1])
    out = folder / "grid.png"  # inside the input folder
    argv = ["--model", str(model), "--layer", "block1_conv1", "--channel", "1", "--input",
            str(folder), "--output", str(out), "--top-k", "4"]
    first = run_main(cli.main, argv)
    assert first.code == 0 and "4 images scanned" in first.stdout
    grid = out.read_bytes()
    again = run_main(cli.main, argv)
    assert_one_line_error(again, "grid.png' already exists", "--overwrite")
    assert out.read_bytes() == grid
    forced = run_main(cli.main, argv + ["--overwrite"])
    assert forced.code == 0 and "4 images scanned" in forced.stdout  # the grid was not read
    assert out.read_bytes() == grid  # same images, same picture
    clash = run_main(cli.main, argv[:-4] + ["--output", str(folder / "im0.png"), "--top-k", "4",
                                            "--overwrite"])
    assert_one_line_error(clash, "im0.png' would replace the input")


def test_cli_truncated_image_and_skipping(setup, tmp_path):
    import cv2

    root, model, images = setup
    folder = tmp_path / "imgs"
    for path in sorted(images.iterdir()):
        save_png(folder / path.name, cv2.imread(str(path))[..., ::-1])
    data = (folder / "im2.png").read_bytes()
    (folder / "im2.png").write_bytes(data[: len(data) // 2])
    argv = ["--model", str(model), "--layer", "block1_conv1", "--channel", "1", "--input",
            str(folder), "--top-k", "2"]
    stopped = run_main(cli.main, argv + ["--output", str(tmp_path / "a.png")])
    assert_one_line_error(stopped, "im2.png", "truncated PNG")
    assert not (tmp_path / "a.png").exists()
    skipped = run_main(cli.main, argv + ["--output", str(tmp_path / "b.png"), "--skip-errors"])
    assert skipped.code == 1 and "3 images scanned" in skipped.stdout
    assert_one_line_error(skipped, "1 of 4 image(s) skipped", "im2.png")
    assert cv2.imread(str(tmp_path / "b.png")) is not None


@pytest.mark.slow
def test_cli_vgg16_by_name(tmp_path, capsys):
    rng = np.random.default_rng(1)
    save_png(tmp_path / "a.png", rng.integers(0, 256, (100, 120, 3)).astype("uint8"))
    out = tmp_path / "vgg.png"
    rc = cli.main(["--model", "vgg16", "--layer", "block2_conv2", "--channel", "7",
                   "--input", str(tmp_path / "a.png"), "--output", str(out), "--top-k", "2"])
    assert rc == 0 and out.is_file()


def test_cli_shipped_model_by_name_is_the_file_predict_uses(tmp_path, monkeypatch, capsys):
    """``--model horse_compact`` (as in deconvnet-predict) loads the registry's .keras file:
    the same grid as the path itself (camvid_compact's EfficientNet encoder has no
    deconvnet projection)."""
    import cv2

    from deconvnet_tf.models.registry import resolve

    monkeypatch.setenv("DECONVNET_HOME", str(tmp_path / "home"))  # only the source tree
    rng = np.random.default_rng(2)
    save_png(tmp_path / "a.png", rng.integers(0, 256, (48, 64, 3)).astype("uint8"))
    grids = []
    for model in ("horse_compact", str(resolve("horse_compact")[0])):
        out = tmp_path / f"grid{len(grids)}.png"
        rc = cli.main(["--model", model, "--layer", "block1_conv1", "--channel", "3",
                       "--input", str(tmp_path / "a.png"), "--output", str(out), "--top-k", "2"])
        assert rc == 0, capsys.readouterr().err
        grids.append(cv2.imread(str(out)))
    np.testing.assert_array_equal(grids[0], grids[1])


def test_cli_ties_option_reaches_the_projection(setup, monkeypatch):
    """--ties skip is passed to the projection (the numbers of both rules are tested in
    tests/visualize); the default is the paper's exact rule."""
    from deconvnet_tf.visualize import Projector

    root, model, images = setup
    seen = []
    original = Projector.project

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("ties", "exact"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Projector, "project", spy)
    for ties, name in ((None, "exact.png"), ("skip", "skip.png")):
        argv = ["--model", str(model), "--layer", "block2_conv1_relu", "--channel", "1",
                "--input", str(images), "--output", str(root / name), "--top-k", "2"]
        assert cli.main(argv + (["--ties", ties] if ties else [])) == 0
        assert seen and set(seen) == {ties or "exact"}
        seen.clear()


def test_cli_normalises_colours_like_predict_unless_no_color_norm(setup, tmp_path, capsys):
    """A Segmenter with a ``color_target`` is scanned on normalised images (announced on
    stderr), as deconvnet-predict runs it; ``--no-color-norm`` scans the images as they are,
    like the bare network."""
    import cv2

    from deconvnet_tf import Segmenter

    root, model, images = setup
    network = deconvnet_tf.load_model(model)
    target = {"mean": [200.0, 30.0, 90.0], "std": [20.0, 60.0, 40.0]}
    seg = tmp_path / "seg.keras"
    Segmenter(network, image_size=None, color_target=target).save(seg)
    grids = {}
    for name, path, flags in (("seg", seg, []), ("off", seg, ["--no-color-norm"]),
                              ("bare", model, [])):
        out = tmp_path / f"{name}.png"
        assert cli.main(["--model", str(path), "--layer", "block1_conv1", "--channel", "2",
                         "--input", str(images), "--output", str(out), "--top-k", "2",
                         *flags]) == 0
        announced = "colour normalisation on (the model's color_target" in (
            capsys.readouterr().err)
        assert announced == (name == "seg"), name
        grids[name] = cv2.imread(str(out))
    np.testing.assert_array_equal(grids["off"], grids["bare"])
    assert grids["seg"].shape != grids["bare"].shape or not np.array_equal(grids["seg"],
                                                                           grids["bare"])
