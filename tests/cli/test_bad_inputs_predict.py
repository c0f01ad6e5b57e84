"""The bad-input corpus of the prediction-side console scripts: deconvnet-predict,
deconvnet-lite-predict, deconvnet-crf, deconvnet-visualize and deconvnet-demo.

Every case ends either as a one-line error (non-zero status, ``<prog>: error: ...`` naming the
argument or file and what was expected, no traceback) or as a success whose result is checked.
"""

from __future__ import annotations

import errno
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.cli import crf as crf_cli
from deconvnet_tf.cli import demo as demo_cli
from deconvnet_tf.cli import lite_predict as lite_cli
from deconvnet_tf.cli import predict as predict_cli
from deconvnet_tf.cli import visualize as visualize_cli
from deconvnet_tf.data.synthetic import make_scene
from deconvnet_tf.inference.predict import predict_image, softmax
from tests.cli.corpus import Outcome, assert_one_line_error, run_main
from tests.conftest import BACKEND

MAINS = {"predict": predict_cli.main, "lite": lite_cli.main, "crf": crf_cli.main,
         "visualize": visualize_cli.main, "demo": demo_cli.main}
PROGS = {"predict": "deconvnet-predict", "lite": "deconvnet-lite-predict",
         "crf": "deconvnet-crf", "visualize": "deconvnet-visualize", "demo": "deconvnet-demo"}
H, W = 32, 40


# ------------------------------------------------------------------------------ shared models
@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus_models")
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    model.save(root / "dn.keras")
    deconvnet_tf.build_model("fcn8s_tiny", num_classes=3).save(root / "fcn3.keras")
    tflite = None
    if BACKEND == "tensorflow":
        from deconvnet_tf.export import export_tflite

        tflite = export_tflite(model, root / "dn.tflite")
    return {"root": root, "model": model, "keras": root / "dn.keras",
            "fcn3": root / "fcn3.keras", "tflite": tflite}


class Ctx:
    """Files of one case, made on demand in the case's temporary folder."""

    def __init__(self, tmp: Path, models: dict):
        self.tmp = tmp
        self.models = models
        self.keras = str(models["keras"])
        self.tflite = str(models["tflite"]) if models["tflite"] else ""
        self.rgb: dict[str, np.ndarray] = {}

    def path(self, name: str) -> str:
        return str(self.tmp / name)

    def scene(self, name: str = "imgs/a.png", seed: int = 0) -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image = make_scene(seed, H, W)[0]
        cv2.imwrite(str(path), image[..., ::-1])
        self.rgb[path.name] = image
        return str(path)

    def folder(self, name: str = "imgs", count: int = 2) -> str:
        for i in range(count):
            self.scene(f"{name}/s{i}.png", seed=i)
        return self.path(name)

    def truncated(self, name: str, ext: str = ".jpg") -> str:
        data = cv2.imencode(ext, make_scene(5, H, W)[0])[1].tobytes()
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[: len(data) // 2])
        return str(path)

    def text(self, name: str, content: str = "not an image") -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return str(path)

    def empty_dir(self, name: str = "empty") -> str:
        (self.tmp / name).mkdir(parents=True, exist_ok=True)
        return self.path(name)

    def junk_dir(self, name: str = "junkmodel") -> str:
        folder = self.tmp / name
        folder.mkdir()
        (folder / "weights.bin").write_bytes(os.urandom(64))
        (folder / "notes.txt").write_text("junk")
        return str(folder)

    def odd_channels(self, kind: str, name: str) -> str:
        """Grey, RGBA or 16-bit PNGs; remembers the RGB image they should be read as."""
        base = make_scene(3, H, W)[0]
        path = self.tmp / "imgs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "grey":
            grey = cv2.cvtColor(base, cv2.COLOR_RGB2GRAY)
            cv2.imwrite(str(path), grey)
            self.rgb[name] = np.dstack([grey] * 3)
        elif kind == "rgba":
            cv2.imwrite(str(path), np.dstack([base[..., ::-1], np.full((H, W), 77, np.uint8)]))
            self.rgb[name] = base
        else:
            cv2.imwrite(str(path), (base.astype(np.uint16) * 257)[..., ::-1])
            self.rgb[name] = base
        return str(path)

    def probs(self, folder: str = "probs", stems=("s0", "s1"), shape=(H, W, 5)) -> str:
        out = self.tmp / folder
        out.mkdir(parents=True, exist_ok=True)
        for i, stem in enumerate(stems):
            logits = np.random.default_rng(i).normal(0, 1, shape)
            np.save(out / f"{stem}_probs.npy", softmax(logits).astype(np.float16))
        return str(out)


@dataclass
class Case:
    id: str
    script: str
    argv: Callable[[Ctx], list[str]]
    needles: tuple[str, ...] = ()  # an error with these; empty: a success
    check: Callable[[Ctx, Outcome], None] | None = None
    patch: Callable[[pytest.MonkeyPatch, Ctx], None] | None = None
    needs_tflite: bool = False


def _read_only(monkeypatch, ctx):
    def mkstemp(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def _permission_denied(monkeypatch, ctx):
    def mkstemp(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def _unreadable(name):
    def patch(monkeypatch, ctx):
        real = Path.read_bytes

        def read_bytes(self):
            if self.name == name:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return patch


def _labels(out: Path, stem: str) -> np.ndarray:
    return cv2.imread(str(out / f"{stem}_labels.png"), cv2.IMREAD_UNCHANGED)


def _check_keras_outputs(*names):
    def check(ctx: Ctx, outcome: Outcome):
        out = ctx.tmp / "out"
        for name in names:
            expected = predict_image(ctx.models["model"], ctx.rgb[name]).argmax(-1)
            np.testing.assert_array_equal(_labels(out, Path(name).stem), expected)
    return check


def _check_lite_outputs(*names):
    def check(ctx: Ctx, outcome: Outcome):
        from deconvnet_tf.lite import LiteSegmenter

        seg = LiteSegmenter(ctx.tflite, threads=1)
        for name in names:
            np.testing.assert_array_equal(_labels(ctx.tmp / "out", Path(name).stem),
                                          seg.predict(ctx.rgb[name])[0])
    return check


def _check_crf_outputs(*names):
    def check(ctx: Ctx, outcome: Outcome):
        from deconvnet_tf.inference.crf import dense_crf

        for name in names:
            stem = Path(name).stem
            probs = np.load(ctx.tmp / "probs" / f"{stem}_probs.npy").astype(np.float32)
            expected = dense_crf(ctx.rgb[name], probs).argmax(-1)
            np.testing.assert_array_equal(_labels(ctx.tmp / "out", stem), expected)
    return check


def _check_same_folder(script):
    def check(ctx: Ctx, outcome: Outcome):
        folder = ctx.tmp / "imgs"
        names = sorted(p.name for p in folder.iterdir())
        assert names == sorted([f"s{i}{s}" for i in range(2)
                                for s in (".png", "_labels.png", "_color.png", "_overlay.png")]
                               + (["s0_probs.npy", "s1_probs.npy"] if script == "crf" else []))
        for i in range(2):  # the inputs are untouched
            np.testing.assert_array_equal(cv2.imread(str(folder / f"s{i}.png"))[..., ::-1],
                                          ctx.rgb[f"s{i}.png"])
        rerun = run_main(MAINS[script], outcome_argv[script](ctx))
        assert_one_line_error(rerun, "s0_labels.png' already exists", "--overwrite")
    return check


def _check_grid(scanned):
    def check(ctx: Ctx, outcome: Outcome):
        assert f"{scanned} images scanned" in outcome.stdout
        assert cv2.imread(ctx.path("grid.png")) is not None
    return check


def _existing(script):
    def argv(ctx):
        first = outcome_argv[script](ctx)
        assert run_main(MAINS[script], first).code == 0
        return first
    return argv


# The argv of a successful run into <tmp>/out (or the input folder for "same folder" cases).
outcome_argv = {
    "predict": lambda c: ["--model", c.keras, "--input", c.path("imgs"), "--output",
                          c.path("imgs") if getattr(c, "same", False) else c.path("out"),
                          "--quiet"],
    "lite": lambda c: ["--model", c.tflite, "--input", c.path("imgs"), "--output",
                       c.path("imgs") if getattr(c, "same", False) else c.path("out")],
    "crf": lambda c: ["--image", c.path("imgs"), "--probs",
                      c.path("imgs") if getattr(c, "same", False) else c.path("probs"), "--output",
                      c.path("imgs") if getattr(c, "same", False) else c.path("out"),
                      "--quiet"],
}


def _same(script):
    def argv(ctx):
        ctx.same = True
        ctx.folder()
        if script == "crf":
            ctx.probs(folder="imgs")
        return outcome_argv[script](ctx)
    return argv


def _setup_existing(script):
    def argv(ctx):
        ctx.folder()
        if script == "crf":
            ctx.probs()
        return _existing(script)(ctx)
    return argv


def _viz(ctx, *extra, inp=None, out=None):
    return ["--model", ctx.keras, "--layer", "block1_conv1", "--channel", "0", "--input",
            inp if inp is not None else ctx.folder(), "--output",
            out if out is not None else ctx.path("grid.png"), "--top-k", "2", *extra]


P, L, C, V, D = "predict", "lite", "crf", "visualize", "demo"


def _p(ctx, *extra, inp=None, out=None, model=None):
    return ["--model", model or ctx.keras, "--input", inp if inp is not None else ctx.folder(),
            "--output", out or ctx.path("out"), "--quiet", *extra]


def _l(ctx, *extra, inp=None, out=None, model=None):
    return ["--model", model or ctx.tflite, "--input", inp if inp is not None else ctx.folder(),
            "--output", out or ctx.path("out"), *extra]


def _c(ctx, *extra, image=None, probs=None, out=None):
    if image is None:
        image = ctx.folder()
    if probs is None:
        probs = ctx.probs()
    return ["--image", image, "--probs", probs, "--output", out or ctx.path("out"), "--quiet",
            *extra]


def _file_as_output(ctx):
    return ctx.text("taken.txt", "a user's file")


def _under_file(ctx):
    return str(Path(ctx.text("taken.txt", "a user's file")) / "out")


def _keep(name, content):
    def check(ctx, outcome):
        assert Path(ctx.path(name)).read_text() == content
    return check


def _check_downscaled(ctx, outcome):
    assert _labels(ctx.tmp / "out", "s0").shape == (H, W)
    assert "above --max-pixels 600: predicting at 21x27" in outcome.stderr, outcome.stderr


def _corrupt_probs(ctx):
    folder = ctx.probs()
    Path(folder, "s0_probs.npy").write_text("junk")
    return folder


def _crf_odd(ctx, kind):
    ctx.probs(stems=("s0",))
    return _c(ctx, image=ctx.odd_channels(kind, "s0.png"), probs=ctx.path("probs/s0_probs.npy"))


def _viz_odd(ctx):
    for kind, name in (("grey", "g.png"), ("rgba", "r.png"), ("deep", "d.png")):
        ctx.odd_channels(kind, name)
    return _viz(ctx, inp=ctx.path("imgs"))


def _check_rerun_reads_inputs_only(ctx, outcome):
    assert "2 images scanned" in outcome.stdout
    rerun = run_main(visualize_cli.main, _viz(ctx, "--overwrite", out=ctx.path("imgs/grid.png")))
    assert rerun.code == 0 and "2 images scanned" in rerun.stdout  # the grid is not an input


def _zip(ctx):
    path = ctx.tmp / "z.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{not json")
    return str(path)


CASES = [
    # ---------------------------------------------------------------- deconvnet-predict: inputs
    Case("missing input file", P, lambda c: _p(c, inp=c.path("nope.jpg")),
         ("Input not found", "nope.jpg' does not exist")),
    Case("missing input folder", P, lambda c: _p(c, inp=c.path("nowhere")),
         ("Input not found", "nowhere")),
    Case("empty folder", P, lambda c: _p(c, inp=c.empty_dir()), ("No images", "empty'")),
    Case("folder without images", P, lambda c: _p(c, inp=str(Path(c.text("docs/a.txt")).parent)),
         ("No images", "docs'")),
    Case("non-image file", P, lambda c: _p(c, inp=c.text("notes.txt")),
         ("notes.txt' is not an image file",)),
    Case("corrupt image", P, lambda c: _p(c, inp=c.text("fake.png", "garbage")),
         ("Cannot read image", "fake.png': corrupt, unsupported or not an image")),
    Case("truncated jpeg", P, lambda c: _p(c, inp=c.truncated("cut.jpg")),
         ("cut.jpg': truncated JPEG",)),
    Case("truncated png", P, lambda c: _p(c, inp=c.truncated("cut.png", ".png")),
         ("cut.png': truncated PNG",)),
    Case("unreadable image", P, lambda c: _p(c, inp=c.scene("locked.png")),
         ("locked.png': Permission denied",), patch=_unreadable("locked.png")),
    Case("image folder named like an image", P, lambda c: _p(c, inp=c.empty_dir("pic.png")),
         ("No images", "pic.png'")),
    Case("two inputs with one stem", P,
         lambda c: ["--model", c.keras, "--input", str(Path(c.scene("imgs/a.png")).parent),
                    c.scene("more/a.png"), "--output", c.path("out")],
         ("Two inputs share the stem 'a'",)),
    Case("grey png", P, lambda c: _p(c, inp=c.odd_channels("grey", "g.png")),
         check=_check_keras_outputs("g.png")),
    Case("rgba png", P, lambda c: _p(c, inp=c.odd_channels("rgba", "r.png")),
         check=_check_keras_outputs("r.png")),
    Case("16-bit png", P, lambda c: _p(c, inp=c.odd_channels("deep", "d.png")),
         check=_check_keras_outputs("d.png")),
    # ---------------------------------------------------------------- deconvnet-predict: model
    Case("missing model", P, lambda c: _p(c, model=c.path("none.keras")),
         ("Model not found", "none.keras'")),
    Case("text file as model", P, lambda c: _p(c, model=c.text("m.keras", "weights")),
         ("m.keras' is not a .keras model file",)),
    Case("zip that is not a model", P, lambda c: _p(c, model=_zip(c)),
         ("Cannot load the model", "z.keras'")),
    Case("folder of junk as model", P, lambda c: _p(c, model=c.junk_dir()),
         ("junkmodel' is a folder but not a SavedModel",)),
    Case("image as model", P, lambda c: _p(c, model=c.scene("model.png")),
         ("model.png' is not a .keras model file",)),
    Case("tflite to predict", P, lambda c: _p(c, model=c.text("m.tflite")),
         ("m.tflite' is a LiteRT model", "deconvnet-lite-predict")),
    Case("missing ensemble", P, lambda c: _p(c, "--ensemble", c.path("fcn.keras")),
         ("Model not found", "fcn.keras'")),
    Case("ensemble with other classes", P,
         lambda c: _p(c, "--ensemble", str(c.models["fcn3"])), ("class",)),
    # ---------------------------------------------------------------- deconvnet-predict: output
    Case("output is a file", P, lambda c: _p(c, out=_file_as_output(c)),
         ("--output", "taken.txt' is a file; expected a folder"),
         check=_keep("taken.txt", "a user's file")),
    Case("output below a file", P, lambda c: _p(c, out=_under_file(c)),
         ("--output", "cannot write there (a part of the path is a file)")),
    Case("output read-only", P, lambda c: _p(c), ("--output", "Read-only file system"),
         patch=_read_only),
    Case("output not writable", P, lambda c: _p(c), ("--output", "Permission denied"),
         patch=_permission_denied),
    Case("proposal cache is a file", P,
         lambda c: _p(c, "--mode", "instance", "--proposal-cache", c.text("cache")),
         ("--proposal-cache", "cache' is a file")),
    Case("existing outputs", P, _setup_existing(P), ("s0_labels.png' already exists",
                                                     "--overwrite")),
    Case("output folder is the input folder", P, _same(P), check=_check_same_folder(P)),
    # ---------------------------------------------------------------- deconvnet-predict: flags
    Case("batch size 0", P, lambda c: ["--model", "m", "--input", "i", "--output", "o",
                                       "--batch-size", "0"],
         ("argument --batch-size: expected an integer >= 1, got 0",)),
    Case("batch size text", P, lambda c: ["--model", "m", "--input", "i", "--output", "o",
                                          "--batch-size", "two"],
         ("argument --batch-size: expected an integer >= 1, got 'two'",)),
    Case("top-k negative", P, lambda c: ["--model", "m", "--input", "i", "--output", "o",
                                         "--top-k", "-3"], ("argument --top-k",)),
    Case("min-box 0", P, lambda c: ["--model", "m", "--input", "i", "--output", "o",
                                    "--min-box", "0"], ("argument --min-box",)),
    Case("enlarge 0", P, lambda c: ["--model", "m", "--input", "i", "--output", "o",
                                    "--enlarge", "0"],
         ("argument --enlarge: expected a number > 0, got '0'",)),
    Case("enlarge nan", P, lambda c: ["--model", "m", "--input", "i", "--output", "o",
                                      "--enlarge", "nan"], ("argument --enlarge",)),
    Case("max-pixels 0", P, lambda c: ["--model", "m", "--input", "i", "--output", "o",
                                       "--max-pixels", "0"],
         ("argument --max-pixels: expected a whole pixel count >= 1",)),
    Case("max-pixels text", P, lambda c: ["--model", "m", "--input", "i", "--output", "o",
                                          "--max-pixels", "lots"],
         ("argument --max-pixels: expected a pixel count such as 2000000",)),
    Case("max-pixels fraction", P, lambda c: ["--model", "m", "--input", "i", "--output", "o",
                                              "--max-pixels", "1.5"],
         ("argument --max-pixels",)),
    Case("crop size below the model minimum", P,
         lambda c: _p(c, "--mode", "instance", "--input-size", "8", "--edge", "gradient"),
         ("--input-size 8 is below the model's minimum input size 17",)),
    Case("max-pixels in scientific notation", P, lambda c: _p(c, "--max-pixels", "6e2"),
         check=_check_downscaled),
    # ---------------------------------------------------------------- deconvnet-lite-predict
    Case("lite: missing input", L, lambda c: _l(c, inp=c.path("nope.png")),
         ("Input not found", "nope.png"), needs_tflite=True),
    Case("lite: empty folder", L, lambda c: _l(c, inp=c.empty_dir()), ("No images",),
         needs_tflite=True),
    Case("lite: corrupt image", L, lambda c: _l(c, inp=c.text("fake.jpg", "garbage")),
         ("fake.jpg': corrupt",), needs_tflite=True),
    Case("lite: truncated jpeg", L, lambda c: _l(c, inp=c.truncated("cut.jpg")),
         ("cut.jpg': truncated JPEG",), needs_tflite=True),
    Case("lite: missing model", L, lambda c: _l(c, model=c.path("none.tflite")),
         ("TFLite model not found", "none.tflite'")),
    Case("lite: junk model", L, lambda c: _l(c, model=c.text("junk.tflite", "x" * 64)),
         ("junk.tflite' is not a TFLite model LiteRT can load",)),
    Case("lite: keras model", L, lambda c: _l(c, model=c.keras),
         ("dn.keras' is not a TFLite model", "deconvnet-predict")),
    Case("lite: folder as model", L, lambda c: _l(c, model=c.junk_dir()),
         ("junkmodel' is a folder; expected a .tflite file",)),
    Case("lite: output is a file", L, lambda c: _l(c, out=_file_as_output(c)),
         ("taken.txt' is a file",), needs_tflite=True, check=_keep("taken.txt", "a user's file")),
    Case("lite: output read-only", L, lambda c: _l(c), ("Read-only file system",),
         patch=_read_only, needs_tflite=True),
    Case("lite: existing outputs", L, _setup_existing(L), ("already exists", "--overwrite"),
         needs_tflite=True),
    Case("lite: output folder is the input folder", L, _same(L), check=_check_same_folder(L),
         needs_tflite=True),
    Case("lite: threads 0", L, lambda c: ["--model", "m", "--input", "i", "--output", "o",
                                          "--threads", "0"],
         ("argument --threads: expected an integer >= 1, got 0",)),
    Case("lite: max-pixels -1", L, lambda c: ["--model", "m", "--input", "i", "--output", "o",
                                              "--max-pixels", "-1"], ("argument --max-pixels",)),
    Case("lite: grey png", L, lambda c: _l(c, inp=c.odd_channels("grey", "g.png")),
         check=_check_lite_outputs("g.png"), needs_tflite=True),
    Case("lite: rgba png", L, lambda c: _l(c, inp=c.odd_channels("rgba", "r.png")),
         check=_check_lite_outputs("r.png"), needs_tflite=True),
    Case("lite: 16-bit png", L, lambda c: _l(c, inp=c.odd_channels("deep", "d.png")),
         check=_check_lite_outputs("d.png"), needs_tflite=True),
    # ---------------------------------------------------------------- deconvnet-crf
    Case("crf: missing image", C, lambda c: _c(c, image=c.path("nope.png")),
         ("Input not found", "nope.png")),
    Case("crf: missing probabilities", C, lambda c: _c(c, probs=c.path("noprobs")),
         ("Probabilities not found", "noprobs'")),
    Case("crf: empty image folder", C, lambda c: _c(c, image=c.empty_dir()), ("No images",)),
    Case("crf: truncated image", C,
         lambda c: _c(c, image=c.truncated("imgs/s0.png", ".png")),
         ("s0.png': truncated PNG",)),
    Case("crf: corrupt probabilities", C, lambda c: _c(c, probs=_corrupt_probs(c)),
         ("Cannot read probabilities", "s0_probs.npy': not a NumPy .npy file")),
    Case("crf: probabilities of another size", C,
         lambda c: _c(c, probs=c.probs(shape=(H // 2, W, 5))),
         ("do not match the image's 32x40",)),
    Case("crf: output is a file", C, lambda c: _c(c, out=_file_as_output(c)),
         ("taken.txt' is a file",)),
    Case("crf: output not writable", C, lambda c: _c(c), ("Permission denied",),
         patch=_permission_denied),
    Case("crf: existing outputs", C, _setup_existing(C), ("already exists", "--overwrite")),
    Case("crf: refined probabilities over the inputs", C,
         lambda c: _c(c, "--save-probs", "--overwrite", out=c.path("probs")),
         ("s0_probs.npy' would replace the input",)),
    Case("crf: output folder is the image folder", C, _same(C), check=_check_same_folder(C)),
    Case("crf: iterations 0", C, lambda c: ["--image", "i", "--probs", "p", "--output", "o",
                                            "--iterations", "0"],
         ("argument --iterations: expected an integer >= 1, got 0",)),
    Case("crf: negative sxy", C, lambda c: ["--image", "i", "--probs", "p", "--output", "o",
                                            "--gaussian-sxy", "-1"],
         ("argument --gaussian-sxy: expected a finite number >= 0",)),
    Case("crf: infinite srgb", C, lambda c: ["--image", "i", "--probs", "p", "--output", "o",
                                             "--bilateral-srgb", "inf"],
         ("argument --bilateral-srgb",)),
    Case("crf: zero sxy", C, lambda c: _c(c, "--bilateral-sxy", "0"),
         ("CRF setting bilateral_sxy must be > 0",)),
    Case("crf: grey image", C, lambda c: _crf_odd(c, "grey"), check=_check_crf_outputs("s0.png")),
    Case("crf: rgba image", C, lambda c: _crf_odd(c, "rgba"), check=_check_crf_outputs("s0.png")),
    Case("crf: 16-bit image", C, lambda c: _crf_odd(c, "deep"),
         check=_check_crf_outputs("s0.png")),
    # ---------------------------------------------------------------- deconvnet-visualize
    Case("visualize: missing input", V, lambda c: _viz(c, inp=c.path("nope")),
         ("--input", "nope': no such file or folder")),
    Case("visualize: empty folder", V, lambda c: _viz(c, inp=c.empty_dir()),
         ("--input", "no images")),
    Case("visualize: truncated image", V,
         lambda c: _viz(c, inp=str(Path(c.truncated("imgs/b.jpg")).parent)),
         ("b.jpg': truncated JPEG",)),
    Case("visualize: corrupt image", V, lambda c: _viz(c, inp=c.text("x.png", "junk")),
         ("x.png': corrupt",)),
    Case("visualize: missing model", V,
         lambda c: ["--model", c.path("none.keras"), *_viz(c)[2:]],
         ("Model file not found", "none.keras'")),
    Case("visualize: unknown model name", V, lambda c: ["--model", "resnet", *_viz(c)[2:]],
         ("--model 'resnet': expected a .keras model file, a shipped model's name "
          "(camvid_compact, horse_compact) or 'vgg16'",)),
    Case("visualize: corrupt image, grid in a new folder", V,
         lambda c: _viz(c, inp=c.text("y.png", "junk"), out=c.path("out/deep/grid.png")),
         ("y.png': corrupt",)),
    Case("visualize: folder as model", V, lambda c: ["--model", c.junk_dir(), *_viz(c)[2:]],
         ("junkmodel' is not a .keras model file",)),
    Case("visualize: zip as model", V, lambda c: ["--model", _zip(c), *_viz(c)[2:]],
         ("Cannot load the model", "z.keras'")),
    Case("visualize: output is a folder", V, lambda c: _viz(c, out=c.empty_dir("g.png")),
         ("g.png' is a folder",)),
    Case("visualize: output not png", V, lambda c: _viz(c, out=c.path("g.jpg")),
         ("expected a .png file name",)),
    Case("visualize: output below a file", V,
         lambda c: _viz(c, out=str(Path(_under_file(c)).with_name("g.png"))),
         ("--output folder", "taken.txt' is a file; expected a folder")),
    Case("visualize: output two levels below a file", V,
         lambda c: _viz(c, out=str(Path(_under_file(c)) / "g.png")),
         ("--output folder", "a part of the path is a file")),
    Case("visualize: output read-only", V, lambda c: _viz(c), ("Read-only file system",),
         patch=_read_only),
    Case("visualize: existing output", V,
         lambda c: _viz(c, out=c.text("grid.png", "a user's picture")),
         ("grid.png' already exists", "--overwrite"), check=_keep("grid.png", "a user's picture")),
    Case("visualize: output is an input", V,
         lambda c: _viz(c, "--overwrite", inp=c.scene("imgs/a.png"), out=c.path("imgs/a.png")),
         ("a.png' would replace the input",)),
    Case("visualize: top-k 0", V, lambda c: _viz(c, "--top-k", "0"),
         ("argument --top-k: expected an integer >= 1",)),
    Case("visualize: negative channel", V,
         lambda c: ["--model", "m", "--layer", "x", "--channel", "-1", "--input", "i",
                    "--output", "o.png"], ("argument --channel",)),
    Case("visualize: tile text", V, lambda c: _viz(c, "--tile", "big"), ("argument --tile",)),
    Case("visualize: grey, rgba and 16-bit pngs", V, _viz_odd, check=_check_grid(3)),
    Case("visualize: output folder is the input folder", V,
         lambda c: _viz(c, out=c.path("imgs/grid.png")), check=_check_rerun_reads_inputs_only),
    # ---------------------------------------------------------------- deconvnet-demo
    Case("demo: output is a file", D, lambda c: ["--output", _file_as_output(c)],
         ("--output", "taken.txt' is a file; expected a folder"),
         check=_keep("taken.txt", "a user's file")),
    Case("demo: output below a file", D, lambda c: ["--output", _under_file(c)],
         ("--output", "a part of the path is a file")),
    Case("demo: output read-only", D, lambda c: ["--output", c.path("demo")],
         ("--output", "Read-only file system"), patch=_read_only),
    Case("demo: epochs 0", D, lambda c: ["--epochs", "0"],
         ("argument --epochs: expected an integer >= 1, got 0",)),
    Case("demo: epochs text", D, lambda c: ["--epochs", "many"], ("argument --epochs",)),
    Case("demo: num-train 0", D, lambda c: ["--num-train", "0"], ("argument --num-train",)),
    Case("demo: negative seed", D, lambda c: ["--seed", "-1"],
         ("argument --seed: expected an integer in 0..4294967295, got -1",)),
    Case("demo: seed too large", D, lambda c: ["--seed", str(2**32)], ("argument --seed",)),
    Case("demo: unknown preset", D, lambda c: ["--preset", "deconvnet_huge"],
         ("unknown --preset 'deconvnet_huge'",)),
]


def test_the_corpus_covers_every_script():
    counts = {s: [0, 0] for s in MAINS}
    for case in CASES:
        counts[case.script][0 if case.needles else 1] += 1
    assert all(errors >= 5 for errors, _ in counts.values()), counts
    assert all(ok >= 1 for s, (_, ok) in counts.items() if s != "demo"), counts
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, models, tmp_path, monkeypatch):
    if case.needs_tflite and models["tflite"] is None:
        pytest.skip("the .tflite model is exported with the TensorFlow backend")
    ctx = Ctx(tmp_path, models)
    argv = case.argv(ctx)
    assert argv is not None
    if case.patch is not None:
        case.patch(monkeypatch, ctx)
    had_outputs = (tmp_path / "out").exists()
    outcome = run_main(MAINS[case.script], argv)
    monkeypatch.undo()
    assert "Traceback" not in outcome.stderr, outcome.stderr
    if case.needles:
        line = assert_one_line_error(outcome, *case.needles)
        assert line.startswith(f"{PROGS[case.script]}: error: "), line
        if not had_outputs:  # an error before any work leaves no outputs, not even a folder
            assert not (tmp_path / "out").exists(), sorted((tmp_path / "out").iterdir())
    else:
        assert outcome.code == 0, outcome.stderr
    if case.check is not None:
        case.check(ctx, outcome)


def test_skipping_finishes_the_folder_and_exits_1(models, tmp_path):
    """One bad file among good ones: with --skip-errors every script writes the good images,
    lists the bad one and exits 1 with one error line."""
    ctx = Ctx(tmp_path, models)
    ctx.folder()
    ctx.truncated("imgs/s2.jpg")
    runs = [("predict", _p(ctx, "--skip-errors", inp=ctx.path("imgs")), "s0_labels.png")]
    if models["tflite"] is not None:
        runs.append(("lite", _l(ctx, "--skip-errors", inp=ctx.path("imgs"),
                                out=ctx.path("lite")), "s0_labels.png"))
    ctx.probs(stems=("s0", "s1", "s2"))
    runs.append(("crf", _c(ctx, "--skip-errors", image=ctx.path("imgs"), probs=ctx.path("probs"),
                           out=ctx.path("crf")), "s0_labels.png"))
    runs.append(("visualize", _viz(ctx, "--skip-errors", inp=ctx.path("imgs"),
                                   out=ctx.path("v/grid.png")), None))
    for script, argv, written in runs:
        outcome = run_main(MAINS[script], argv)
        assert outcome.code == 1, (script, outcome.stderr)
        assert f"{PROGS[script]}: skipped: Cannot read image" in outcome.stderr
        assert_one_line_error(outcome, "1 of 3 image(s) skipped", "s2.jpg")
        out = Path(argv[argv.index("--output") + 1])
        if written:
            assert sorted(p.name for p in out.glob("*_labels.png")) == [
                "s0_labels.png", "s1_labels.png"], script
        else:
            assert out.is_file() and "2 images scanned" in outcome.stdout
