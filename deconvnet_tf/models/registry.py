"""The shipped models by name: a registry as data (name -> file, sha256, card, metadata).

``Segmenter.from_preset(name)`` and ``deconvnet-predict --model name`` find a model file in
this order:

1. an existing path (a ``.keras`` file given as is; no hash check);
2. the cache folder ``$DECONVNET_HOME`` (default ``~/.deconvnet``): ``<home>/<file>``;
3. the source tree's ``saved_models/`` (a git checkout or an editable install);
4. the entry's ``url`` (none for the shipped models yet), downloaded once into the cache
   folder with ``keras.utils.get_file`` and checked against ``sha256``.

Files found by name (2, 3) are checked against the registry's ``sha256`` too. A URL handle
(``https://...`` or ``file://...``, optionally ``#sha256=<hex>``) is downloaded the same way.

Pure Python (Keras is imported only for a download): :func:`resolve` is what the command
lines use before any model is loaded.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

__all__ = ["REGISTRY", "SOURCE_MODELS", "deconvnet_home", "download", "get_entry",
           "list_models", "register", "resolve", "resolve_tflite", "sha256_of"]

_CAMVID_CLASSES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence",
                   "Car", "Pedestrian", "Bicyclist"]
_CAMVID_COLOURS = [[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222],
                   [128, 128, 0], [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0],
                   [0, 128, 192]]

#: name -> entry. ``file``: file name in the cache folder / ``saved_models/``; ``sha256`` of
#: that file; ``card``: the model card next to it; ``url``: where to download it (``None``:
#: not published for download); ``metadata``: Segmenter settings (also stored inside the
#: shipped ``.keras`` files; used for a bare-network copy of the file); ``tflite``:
#: ``{quantize: [file, sha256]}`` of the LiteRT exports (``deconvnet-lite-predict --model
#: camvid_compact`` / ``camvid_compact_int8``).
REGISTRY: dict[str, dict[str, Any]] = {
    "camvid_compact": {
        "file": "camvid_compact.keras",
        "sha256": "a36068adb7a52dcd60ab08f4307092fbc25eb27460e982905b2e5d0f964d068f",
        "card": "camvid_compact.md",
        "url": None,
        # int8 only: the fp32 LiteRT file does not fit the size budget of saved_models/
        # (deconvnet-export --model camvid_compact writes it; resolve_tflite says so)
        "tflite": {
            "int8": ["camvid_compact_int8.tflite",
                     "0d0d51f08d2113222271cbbf8fe808b96f29488dacc3ba982a83c3d7f2985586"],
        },
        "description": "CamVid 11 classes, EDeconvNet: deconvnet_efficientnet_lite0 + "
                       "fcn8s_efficientnet_lite0 (ImageNet EfficientNet-Lite0 encoders), the "
                       "mean of their probabilities; trained on native 360x480 frames",
        "metadata": {
            "image_size": [360, 480],
            "class_names": _CAMVID_CLASSES,
            "void_label": 11,
            "palette": dict(zip(_CAMVID_CLASSES, _CAMVID_COLOURS)),
            "test_time_flip": True,
            # since 2026-12-07 (twenty-eighth session): the networks at 1 and 1.5 times the
            # working size, without the CRF: +2.6 on fold E, a fold chosen for it; +1.2 over
            # folds T, A, E (docs/results.md, "Test-time multi-scale without the CRF ...")
            "test_time_scales": [1.0, 1.5],
            "default_crf": False,
            # the per-channel statistics of the 367 native training frames (test-time colour
            # normalisation, chosen on the dev split; docs/results.md)
            "color_target": {"mean": [105.033, 108.409, 110.331],
                             "std": [78.304, 79.461, 78.341]},
        },
    },
    "horse_compact": {
        "file": "horse_compact.keras",
        "sha256": "614b35cbbbb66bdf4d1f1dd12fe8d8fb6522b90cb74dda0bd69a308e2666bd52",
        "card": "horse_compact.md",
        "url": None,
        "tflite": {
            "none": ["horse_compact.tflite",
                     "87dca217b38a95f38739563e9217ca593975aff6f0869670752c7c117421828b"],
            "int8": ["horse_compact_int8.tflite",
                     "94907a8d5870ac41c5b8a2fdf81c035dd73164eb7b764cb4ad7fe847c768ca86"],
        },
        "description": "Weizmann Horse, binary, deconvnet_vgg16_compact, trained on 224x224 "
                       "crops of native-resolution images of train + val, a fifth of them "
                       "greyscale (runs at native resolution)",
        "metadata": {
            "image_size": None,
            "class_names": ["background", "horse"],
            "void_label": None,
            "palette": {"background": [0, 0, 0], "horse": [128, 0, 0]},
            "default_crf": True,
            "test_time_flip": True,
        },
    },
}

#: The source tree's model folder (exists in a checkout, not in a wheel).
SOURCE_MODELS = Path(__file__).resolve().parents[2] / "saved_models"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def deconvnet_home() -> Path:
    """The cache folder: ``$DECONVNET_HOME`` or ``~/.deconvnet``."""
    home = os.environ.get("DECONVNET_HOME")
    return Path(home).expanduser() if home else Path.home() / ".deconvnet"


def list_models() -> list[str]:
    """Names of the registered models."""
    return sorted(REGISTRY)


def get_entry(name: str) -> dict[str, Any]:
    """A copy of the registry entry of ``name``.

    Raises:
        FileNotFoundError: Unknown name (the message lists the known ones).
    """
    if name not in REGISTRY:
        raise FileNotFoundError(f"No model {name!r}: not a file and not a registered model "
                                f"(known: {', '.join(list_models())})")
    return copy.deepcopy(REGISTRY[name])


def register(name: str, *, file: str, sha256: str, url: str | None = None,
             card: str | None = None, metadata: dict[str, Any] | None = None,
             description: str = "", replace: bool = False) -> None:
    """Adds a model to the registry (e.g. a team's own published models).

    Raises:
        ValueError: Bad name, file name or hash, or a taken name without ``replace``.
    """
    if not re.match(r"^[A-Za-z0-9_.-]+$", str(name)) or name.endswith(".keras"):
        raise ValueError(f"register: name {name!r} must be letters, digits, '_', '-', '.' "
                         "(no .keras suffix)")
    if Path(file).name != file or not file.endswith(".keras"):
        raise ValueError(f"register: file {file!r} must be a bare .keras file name")
    if not _SHA256.match(str(sha256)):
        raise ValueError(f"register: sha256 must be 64 lowercase hex digits, got {sha256!r}")
    if name in REGISTRY and not replace:
        raise ValueError(f"register: {name!r} is registered already (pass replace=True)")
    REGISTRY[name] = {"file": file, "sha256": sha256, "card": card, "url": url,
                      "description": description, "metadata": dict(metadata or {})}


def sha256_of(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_url(text: str) -> bool:
    return bool(re.match(r"^(https?|file)://", text))


def _split_hash(url: str) -> tuple[str, str | None]:
    base, _, fragment = url.partition("#")
    if not fragment:
        return base, None
    key, _, value = fragment.partition("=")
    if key != "sha256" or not _SHA256.match(value.lower()):
        raise ValueError(f"{url!r}: the URL fragment must be '#sha256=<64 hex digits>'")
    return base, value.lower()


def download(url: str, sha256: str | None = None, fname: str | None = None) -> Path:
    """Downloads ``url`` into :func:`deconvnet_home` with ``keras.utils.get_file``, checking
    ``sha256`` (a cached copy with the right hash is reused).

    Raises:
        ValueError: The file's hash differs from ``sha256`` (the bad download is removed), or
            the download failed.
    """
    import keras

    fname = fname or Path(unquote(urlparse(url).path)).name
    if not fname.endswith(".keras"):
        raise ValueError(f"{url!r}: expected a URL of a .keras file")
    home = deconvnet_home()
    home.mkdir(parents=True, exist_ok=True)
    target = home / fname
    try:
        path = keras.utils.get_file(fname=fname, origin=url, file_hash=sha256,
                                    hash_algorithm="sha256", cache_dir=str(home),
                                    cache_subdir=".")
    except ValueError as err:
        if sha256 is not None and target.exists() and sha256_of(target) != sha256:
            target.unlink()  # never leave a file with the wrong hash under a known name
        raise ValueError(f"{url!r}: downloaded file does not match sha256 {sha256} "
                         f"({str(err).splitlines()[0]})") from None
    except Exception as err:  # urllib raises several types
        raise ValueError(f"Cannot download {url!r}: {type(err).__name__}: {err}") from None
    return Path(path)


def _check_hash(path: Path, sha256: str | None, name: str) -> Path:
    if sha256 is not None and sha256_of(path) != sha256:
        raise ValueError(f"{str(path)!r} does not match the sha256 of registered model {name!r} "
                         f"({sha256}); the file is damaged or another version: delete it (it is "
                         "looked up again) or pass the path itself")
    return path


def resolve(handle: str | os.PathLike) -> tuple[Path, dict[str, Any] | None]:
    """The local ``.keras`` file of a model handle, and its registry entry (or ``None``).

    Args:
        handle: An existing path, a registered name, or a URL (see the module docstring).

    Raises:
        FileNotFoundError: A name that is neither a file nor registered, or a registered model
            whose file is in none of the places and has no URL (the message says where to put
            it).
        ValueError: An empty handle, a hash mismatch or a failed download.
        TypeError: ``handle`` is neither a string nor a path.
    """
    if not isinstance(handle, (str, os.PathLike)):
        raise TypeError(f"model handle must be a path, a registered name or a URL, got "
                        f"{type(handle).__name__}")
    text = os.fspath(handle)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"model handle must be a path, a name or a URL, got {handle!r}")
    path = Path(text).expanduser()
    if path.exists():
        return path, None
    if _is_url(text):
        url, sha = _split_hash(text)
        return download(url, sha), None
    if text not in REGISTRY:
        if text.endswith(".keras") or os.sep in text or "/" in text:
            raise FileNotFoundError(f"Model file not found: {text!r}")
        raise FileNotFoundError(f"No model {text!r}: not a file and not a registered model "
                                f"(known: {', '.join(list_models())})")
    entry = get_entry(text)
    for folder in (deconvnet_home(), SOURCE_MODELS):
        candidate = folder / entry["file"]
        if candidate.is_file():
            return _check_hash(candidate, entry.get("sha256"), text), entry
    if entry.get("url"):
        return download(entry["url"], entry.get("sha256"), entry["file"]), entry
    raise FileNotFoundError(
        f"Model {text!r}: {entry['file']} is not in {str(deconvnet_home())!r} (DECONVNET_HOME) "
        f"nor in the source tree's saved_models/, and it has no download URL: copy "
        f"saved_models/{entry['file']} from the deconvnet-tf repository into "
        f"{str(deconvnet_home())!r}"
    )


def resolve_tflite(handle: str | os.PathLike) -> Path:
    """The local ``.tflite`` file of a handle: an existing path, or a registered name
    (``horse_compact``: fp32; ``camvid_compact_int8``: int8) looked up in the cache folder,
    then the source tree's ``saved_models/`` (checked against the registry's sha256).

    Raises:
        FileNotFoundError: Neither a file nor a registered LiteRT model, its file is in
            neither place, or the registered model does not ship that variant
            (``camvid_compact``'s fp32 file: the message names the export command).
        ValueError: A hash mismatch.
    """
    text = os.fspath(handle)
    path = Path(text).expanduser()
    if path.exists():
        return path
    name, quantize = text, "none"
    if text not in REGISTRY and text.endswith("_int8") and text[:-5] in REGISTRY:
        name, quantize = text[:-5], "int8"
    files = REGISTRY.get(name, {}).get("tflite", {}) if "/" not in text else {}
    if files and quantize not in files:
        shipped = ", ".join(name + ("" if q == "none" else f"_{q}") for q in files)
        raise FileNotFoundError(
            f"Model {text!r}: its {'fp32' if quantize == 'none' else quantize} LiteRT file is "
            f"not shipped (the size budget of saved_models/); shipped: {shipped}. Write it "
            f"with: deconvnet-export --model {name} --output {name}.tflite, then pass "
            f"--model {name}.tflite")
    if quantize not in files:
        return path  # not a name: the caller reports the missing file
    file, sha = files[quantize]
    for folder in (deconvnet_home(), SOURCE_MODELS):
        candidate = folder / file
        if candidate.is_file():
            return _check_hash(candidate, sha, text)
    raise FileNotFoundError(
        f"Model {text!r}: {file} is not in {str(deconvnet_home())!r} (DECONVNET_HOME) nor in "
        f"the source tree's saved_models/: copy saved_models/{file} and its .json sidecar from "
        f"the deconvnet-tf repository into {str(deconvnet_home())!r}"
    )
