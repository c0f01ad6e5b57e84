"""This project against a PyTorch reference of the same network, on the same CPU, interleaved.

The peer is ``tools/peers/deconvnet_torch.py``: the preset's network layer for layer
(``MaxPool2d(return_indices=True)`` + ``MaxUnpool2d``, BatchNorm; parameter count equal to the
Keras model's, checked in every run), trained with the same loss (pixel cross-entropy, void 255)
and the same SGD step (lr 0.01, momentum 0.9, weight decay 5e-4) on the same data at the same
batch and size. Per preset and task (train step at each train batch, inference at batch 1):

* a TensorFlow worker process holds this project's settings: Keras' default train step
  (``train_on_batch``, argmax pair) and the XLA step (switch pair), fp32 and ``mixed_bfloat16``;
  inference is ``predict_on_batch`` of the same models (``tf.function``; XLA for the XLA ones);
* a PyTorch worker process holds the peer's settings: eager fp32 and bf16 autocast (NCHW),
  the same in ``channels_last``, ``torch.compile`` (inductor, channels_last) fp32 and bf16
  (inference compiles with inductor's ``freezing``, PyTorch's CPU inference setting), and for
  inference ONNX Runtime on the peer's ``torch.onnx`` export (standard ONNX ops only: the row
  says so, or why the export failed);
* the settings are measured in memory groups, so that the full network fits in 24 GiB (each
  side holds at most one model with its optimizer state; two Keras models of
  ``deconvnet_vgg16`` with two PyTorch modules peaked at ~19 GiB at batch 4): per precision,
  Keras' default step with PyTorch's NCHW module (eager; ONNX Runtime) and the XLA step with
  the channels_last module (eager, ``torch.compile``);
* in a group every setting gets one untimed call (two for ``torch.compile``: compilation, then
  the first compiled run), the ``tf.matmul`` peak (fp32, bf16; the yardstick of both sides)
  and the ``torch.mm`` peak are measured, then the timed calls go round robin, the frameworks
  alternating (K1 T1 K2 T2 ... once per round, ``steps`` rounds). One worker runs at a time;
  the other waits on its pipe. Both use every usable core (``torch.set_num_threads``, ORT
  ``intra_op_num_threads``);
* when the two sides' best settings were in different groups, they are built again and timed
  head to head, interleaved (``steps`` rounds): the ratio always comes from medians measured
  alternately in the same minutes.

Ratio rows: the peer's best median / this project's best median (= this project's throughput
over the peer's; > 1: this project is faster). ``profile_dir``: a ``tf.profiler`` trace and a
``torch.profiler`` trace of one train step of each side's best setting (first train batch),
with the top-10 ops by self time. A setting that fails (e.g. inductor without a C++ compiler)
becomes a row with the reason in one line; the run goes on. Without PyTorch the rows say
"not installed" (``pip install -e ".[peers]"``).

    python tools/bench_peers.py --presets deconvnet_vgg16 deconvnet_vgg16_compact --size 224
    python tools/bench_peers.py --presets deconvnet_tiny --size 64 --steps 1 --peers eager_fp32
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import importlib
import json
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

# Sibling tools, imported by plain name: tools/ is sys.path[0] when this runs as a script (also
# in the worker processes) and is on pytest's pythonpath (pyproject.toml).
import bench_gpu
import bench_train
from _outputs import existing_output_error, write_json_new

__all__ = ["PROJECT_SETTINGS", "PEER_SETTINGS", "project_settings", "parse_peers", "peer_rows",
           "tf_top_ops", "format_rows", "main"]

MARK = "@@bench_peers "
INSTALL_HINT = "pip install -e \".[peers]\""

# name: (train mode, precision, label)
PROJECT_SETTINGS = {
    "keras_fp32": ("default", "float32", "Keras fp32, argmax pair"),
    "keras_bf16": ("default", "bfloat16", "Keras bf16 (mixed_bfloat16), argmax pair"),
    "keras_xla_fp32": ("xla", "float32", "Keras fp32, switch pair, XLA"),
    "keras_xla_bf16": ("xla", "bfloat16", "Keras bf16 (mixed_bfloat16), switch pair, XLA"),
}
# name: (memory format, compiled, precision, tasks, label)
PEER_SETTINGS = {
    "eager_fp32": ("nchw", False, "float32", ("train", "inference"),
                   "PyTorch eager fp32, NCHW"),
    "eager_bf16": ("nchw", False, "bfloat16", ("train", "inference"),
                   "PyTorch eager bf16 autocast, NCHW"),
    "channels_last_fp32": ("cl", False, "float32", ("train", "inference"),
                           "PyTorch eager fp32, channels_last"),
    "channels_last_bf16": ("cl", False, "bfloat16", ("train", "inference"),
                           "PyTorch eager bf16 autocast, channels_last"),
    "compile_fp32": ("cl", True, "float32", ("train", "inference"),
                     "PyTorch torch.compile (inductor) fp32, channels_last"),
    "compile_bf16": ("cl", True, "bfloat16", ("train", "inference"),
                     "PyTorch torch.compile (inductor) bf16 autocast, channels_last"),
    "onnxruntime": ("nchw", False, "float32", ("inference",),
                    "ONNX Runtime fp32 (torch.onnx export of the peer)"),
}


class WorkerError(RuntimeError):
    """A worker process died, timed out or could not start."""


def _one_line(err: BaseException | str, limit: int = 240) -> str:
    """An exception (or text) as one line: type, the first non-empty line of the message."""
    if isinstance(err, BaseException):
        lines = [l.strip() for l in str(err).splitlines() if l.strip()]
        text = f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    else:
        text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def project_settings(train_modes=("default", "xla"),
                     precisions=("float32", "bfloat16")) -> list[str]:
    """This project's setting names for the given train modes and precisions."""
    return [name for name, (mode, precision, _) in PROJECT_SETTINGS.items()
            if mode in train_modes and precision in precisions]


def parse_peers(spec: str) -> list[str]:
    """``"all"``, ``"none"`` or a comma-separated subset of ``PEER_SETTINGS`` (``"torch"``:
    every PyTorch setting, no ONNX Runtime); raises ``ValueError``."""
    items = [s.strip() for s in (spec or "").split(",") if s.strip()]
    if not items or items == ["none"]:
        return []
    names = []
    for item in items:
        if item == "all":
            names += list(PEER_SETTINGS)
        elif item == "torch":
            names += [n for n in PEER_SETTINGS if n != "onnxruntime"]
        elif item in PEER_SETTINGS:
            names.append(item)
        else:
            raise ValueError(f"unknown peer setting {item!r}; expected all, none, torch or a "
                             f"comma-separated subset of {','.join(PEER_SETTINGS)}")
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------------------------
# Profiles


def tf_top_ops(logdir: str | os.PathLike, k: int = 10) -> dict:
    """Top-``k`` ops by self time of a ``tf.profiler`` trace in ``logdir``.

    XLA steps: the HLO ops of the trace (events with an ``hlo_op`` stat, recorded when
    ``XLA_FLAGS`` has ``--xla_cpu_enable_xprof_traceme=true``), grouped by instruction kind
    (``convolution.12`` -> ``convolution``). Otherwise tf.profiler's op stats
    (``framework_op_stats``), grouped by op type, without IDLE.

    Returns:
        ``{"source", "total_ms", "top": [{"op", "count", "self_ms", "share"}]}``.
    """
    paths = sorted(Path(logdir).glob("**/*.xplane.pb"))
    if not paths:
        raise FileNotFoundError(f"no *.xplane.pb under {logdir}")
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(paths[-1].read_bytes())
    self_ps, count = collections.Counter(), collections.Counter()
    for plane in space.planes:
        hlo_stat = {k for k, v in plane.stat_metadata.items() if v.name == "hlo_op"}
        if not hlo_stat:
            continue
        for line in plane.lines:
            events = sorted(
                ((e.offset_ps, e.duration_ps, plane.event_metadata[e.metadata_id])
                 for e in line.events if any(s.metadata_id in hlo_stat for s in e.stats)),
                key=lambda t: (t[0], -t[1]))
            stack: list[list] = []  # [end, kind, children_ps, duration]

            def pop():
                _, kind, children, duration = stack.pop()
                self_ps[kind] += duration - children
                count[kind] += 1

            for offset, duration, meta in events:
                while stack and stack[-1][0] <= offset:
                    pop()
                if stack:
                    stack[-1][2] += duration
                kind = re.sub(r"\.\d+$", "", meta.display_name or meta.name)
                stack.append([offset + duration, kind, 0, duration])
            while stack:
                pop()
    if self_ps:
        source = "XLA HLO ops of the trace (self time, all threads)"
        totals = {k: (v / 1e9, count[k]) for k, v in self_ps.items()}
    else:
        from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

        data, ok = plugin.xspace_to_tools_data([str(paths[-1])], "framework_op_stats", {})
        if not ok:
            raise RuntimeError(f"tf.profiler op stats: {data[:200]!r}")
        table = json.loads(data)[-1]  # the table without IDLE
        cols = [c["id"] for c in table["cols"]]
        totals: dict = {}
        for row in table["rows"]:
            cell = {c: (v or {}).get("v") for c, v in zip(cols, row["c"])}
            if cell["type"] == "IDLE":
                continue
            ms, n = totals.get(cell["type"], (0.0, 0))
            totals[cell["type"]] = (ms + cell["total_self_time"] / 1e3,
                                    n + int(cell["occurrences"] or 0))
        source = "tf.profiler op stats (self time by op type)"
    total = sum(ms for ms, _ in totals.values())
    top = sorted(totals.items(), key=lambda kv: -kv[1][0])[:k]
    return {"source": source, "total_ms": total,
            "top": [{"op": op, "count": n, "self_ms": ms, "share": ms / total if total else None}
                    for op, (ms, n) in top]}


def _torch_top_ops(prof, k: int = 10) -> dict:
    averages = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in averages) / 1e3
    top = sorted(averages, key=lambda e: -e.self_cpu_time_total)[:k]
    return {"source": "torch.profiler key_averages (self CPU time)", "total_ms": total,
            "top": [{"op": e.key, "count": int(e.count), "self_ms": e.self_cpu_time_total / 1e3,
                     "share": e.self_cpu_time_total / 1e3 / total if total else None}
                    for e in top],
            "table": averages.table(sort_by="self_cpu_time_total", row_limit=k)}


# --------------------------------------------------------------------------------------------
# Workers (``python bench_peers.py --worker keras|torch``: JSON commands on stdin, one answer
# line per command on stdout, prefixed with MARK; everything else on stdout is ignored)


@contextlib.contextmanager
def _policy(precision: str):
    import keras

    old = keras.config.dtype_policy().name
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


class _Side:
    """What both workers share: warm-up, one timed call, the settings that failed."""

    def __init__(self):
        self.calls: dict = {}

    def warm(self, name: str, calls: int = 1) -> dict:
        start = time.perf_counter()
        try:
            self.calls[name]()
            first = time.perf_counter() - start
            for _ in range(calls - 1):
                self.calls[name]()
        except Exception as err:
            traceback.print_exc()
            self.calls.pop(name, None)
            return {"error": _one_line(err)}
        return {"first_s": first}

    def time(self, name: str) -> dict:
        fn = self.calls[name]
        start = time.perf_counter()
        fn()
        return {"s": time.perf_counter() - start}

    def free(self) -> dict:
        self.calls.clear()
        gc.collect()
        return {}

    def rss(self) -> dict:
        """Peak resident memory of this worker so far (GiB)."""
        import resource

        return {"peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


class _KerasSide(_Side):
    def __init__(self):
        super().__init__()
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras  # noqa: F401

        self.models: dict = {}

    def hello(self) -> dict:
        import keras
        import tensorflow as tf

        return {"versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
                "backend": keras.backend.backend(), "threads": _cores()}

    def setup(self, preset, size, task, batch, settings, num_classes) -> dict:
        import numpy as np

        from deconvnet_tf.models import count_flops

        self.free()
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (batch, size, size, 3)).astype("float32")
        y = rng.integers(0, num_classes, (batch, size, size)).astype("int32")
        errors, info = {}, {}
        for name in settings:
            mode, precision, _ = PROJECT_SETTINGS[name]
            try:
                with _policy(precision):
                    model = bench_train.build_train_model(preset, mode == "xla", num_classes,
                                                          (size, size, 3))
                if not info:
                    info = {"params": int(model.count_params()), "flops": int(count_flops(model))}
            except Exception as err:
                traceback.print_exc()
                errors[name] = _one_line(err)
                continue
            self.models[name] = model

            def call(model=model, precision=precision):
                with _policy(precision):
                    if task == "train":
                        return model.train_on_batch(x, y)
                    return model.predict_on_batch(x)

            self.calls[name] = call
        return {**info, "errors": errors}

    def peak(self, n, repeats) -> dict:
        return {p: bench_train.matmul_gflops(p, n, repeats) for p in ("float32", "bfloat16")}

    def profile(self, name, path) -> dict:
        import tensorflow as tf

        tf.profiler.experimental.start(path)
        try:
            self.calls[name]()
        finally:
            tf.profiler.experimental.stop()
        return {"trace": path, **tf_top_ops(path, 10)}

    def free(self) -> dict:
        import keras

        self.models.clear()
        super().free()
        keras.backend.clear_session()
        gc.collect()
        return {}


class _TorchSide(_Side):
    def __init__(self):
        super().__init__()
        self.missing = None
        try:
            import torch
        except ImportError as err:  # reported as "not installed" by hello
            self.missing = _one_line(err)
            return
        self.torch = torch
        torch.set_num_threads(_cores())
        dynamo = torch._dynamo.config
        dynamo.recompile_limit = 64  # train/eval x fp32/bf16 x batch sizes of one module
        if hasattr(dynamo, "fail_on_recompile_limit_hit"):
            dynamo.fail_on_recompile_limit_hit = True  # never fall back to eager silently
        self.tmp = None
        self.state: dict = {}

    def hello(self) -> dict:
        if self.missing:
            return {"missing": self.missing}
        versions = {"torch": self.torch.__version__}
        for name in ("onnxruntime", "onnx", "onnxscript"):
            try:
                versions[name] = importlib.import_module(name).__version__
            except ImportError:
                versions[name] = None
        return {"versions": versions, "threads": self.torch.get_num_threads(),
                "cpu_capability": self.torch.backends.cpu.get_cpu_capability()}

    def setup(self, preset, size, task, batch, settings, num_classes) -> dict:
        import numpy as np

        torch = self.torch
        self.free()
        torch._dynamo.reset()
        from peers.deconvnet_torch import DeconvNetTorch, keras_param_count

        arch = bench_gpu._architecture(preset, num_classes)
        rng = np.random.default_rng(0)  # the Keras worker's data, NHWC -> NCHW
        x_np = rng.integers(0, 256, (batch, size, size, 3)).astype("float32")
        y_np = rng.integers(0, num_classes, (batch, size, size)).astype("int64")
        x = torch.from_numpy(x_np.transpose(0, 3, 1, 2).copy())
        y = torch.from_numpy(y_np)
        criterion = torch.nn.CrossEntropyLoss(ignore_index=255)
        train = task == "train"
        modules, errors, info = {}, {}, {}
        for fmt in ("nchw", "cl"):
            if not any(PEER_SETTINGS[s][0] == fmt for s in settings):
                continue
            torch.manual_seed(0)
            memory = torch.channels_last if fmt == "cl" else torch.contiguous_format
            module = DeconvNetTorch(**arch).to(memory_format=memory).train(train)
            opt = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9,
                                  weight_decay=5e-4) if train else None
            modules[fmt] = (module, opt, x.contiguous(memory_format=memory))
            info["params"] = int(keras_param_count(module))
        compiled = None
        if any(PEER_SETTINGS[s][1] for s in settings):
            import torch._inductor.config as inductor

            inductor.freezing = not train  # weight prepacking (inference only)
            compiled = torch.compile(modules["cl"][0], dynamic=False)
        self.state = {"modules": modules, "compiled": compiled}

        for name in settings:
            fmt, is_compiled, precision, _, _ = PEER_SETTINGS[name]
            module, opt, xin = modules[fmt]
            forward = compiled if is_compiled else module
            bf16 = precision == "bfloat16"
            if name == "onnxruntime":
                try:
                    self.calls[name], info["onnx"] = self._onnx(module, xin)
                except Exception as err:
                    traceback.print_exc()
                    errors[name] = _one_line(err)
                continue
            if train:
                def call(forward=forward, opt=opt, xin=xin, bf16=bf16):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                        loss = criterion(forward(xin).float(), y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    return loss.item()
            else:
                def call(forward=forward, xin=xin, bf16=bf16):
                    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                                enabled=bf16):
                        return forward(xin).float().numpy()
            self.calls[name] = call
        return {**info, "errors": errors}

    def _onnx(self, module, x):
        """Exports the peer (eval, fp32, NCHW) with ``torch.onnx.export`` and opens an ONNX
        Runtime session; returns (call, info)."""
        import numpy as np
        import onnx
        import onnxruntime as ort

        torch = self.torch
        self.tmp = tempfile.TemporaryDirectory(prefix="bench_peers_onnx_")
        path = Path(self.tmp.name) / "deconvnet.onnx"
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # the exporter prints its progress
            torch.onnx.export(module.eval(), (x,), str(path), dynamo=True, external_data=True)
        export_s = time.perf_counter() - start
        graph = onnx.load(str(path), load_external_data=False)
        domains = collections.Counter(n.domain or "ai.onnx" for n in graph.graph.node)
        ops = collections.Counter(n.op_type for n in graph.graph.node)
        nonstandard = sorted(d for d in domains if d != "ai.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = _cores()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        feed = {name: x.numpy()}
        got = session.run(None, feed)[0]
        with torch.inference_mode():
            want = module(x).numpy()
        info = {"export_s": export_s, "ops": dict(ops), "nonstandard_domains": nonstandard,
                "agreement": float(np.mean(got.argmax(1) == want.argmax(1))),
                "max_rel_diff": float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12)),
                "onnx_mib": sum(p.stat().st_size for p in path.parent.iterdir()) / 2**20}
        return (lambda: session.run(None, feed)[0]), info

    def warm(self, name, calls=1):
        calls = max(calls, 2) if PEER_SETTINGS[name][1] else calls
        return super().warm(name, calls)

    def peak(self, n, repeats) -> dict:
        torch = self.torch
        out = {}
        for precision, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
            torch.mm(a, b)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                torch.mm(a, b)
                times.append(time.perf_counter() - start)
            out[precision] = 2 * n**3 / statistics.median(times) / 1e9
        return out

    def profile(self, name, path) -> dict:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            self.calls[name]()
        prof.export_chrome_trace(path)
        return {"trace": path, **_torch_top_ops(prof, 10)}

    def free(self) -> dict:
        self.state = {}
        super().free()
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None
        return {}


def _serve(kind: str) -> int:
    out = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not reach the answer pipe
    side = (_KerasSide if kind == "keras" else _TorchSide)()
    for line in sys.stdin:
        request = json.loads(line)
        command = request.pop("cmd")
        if command == "exit":
            break
        try:
            answer = getattr(side, command)(**request)
        except Exception as err:
            traceback.print_exc()
            answer = {"error": _one_line(err)}
        out.write("\n" + MARK + json.dumps(answer) + "\n")
        out.flush()
    return 0


class _Worker:
    """A worker process and its line protocol (timeouts, death, stderr tail)."""

    def __init__(self, kind: str, python: str, env: dict | None = None):
        self.kind = kind
        self.log = tempfile.TemporaryFile(mode="w+")
        try:
            self.proc = subprocess.Popen(
                [python, str(Path(__file__).resolve()), "--worker", kind],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                env=env, bufsize=1)
        except OSError as err:
            raise WorkerError(f"cannot start {python!r}: {err}") from err
        self.answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith(MARK):
                self.answers.put(json.loads(line[len(MARK):]))
        self.answers.put(None)

    def _tail(self) -> str:
        self.log.seek(0)
        lines = [l for l in self.log.read().splitlines() if l.strip()]
        return " | ".join(lines[-3:])[-600:]

    def call(self, command: str, timeout: float = 3600, **kwargs) -> dict:
        try:
            self.proc.stdin.write(json.dumps({"cmd": command, **kwargs}) + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # it died: the reader's None below says so
        try:
            answer = self.answers.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise WorkerError(f"{self.kind} worker: {command} timed out after {timeout:.0f} s")
        if answer is None:
            try:
                code = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                code = None
            raise WorkerError(f"{self.kind} worker died (exit {code}"
                              + (", killed: out of memory?" if code in (-9, 137) else "")
                              + f") during {command}: {self._tail()}")
        return answer

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "exit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self.log.close()


# --------------------------------------------------------------------------------------------
# The run


def _log(message: str) -> None:
    print(f"[bench_peers {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _interleave(a: list, b: list) -> list:
    out = []
    for i in range(max(len(a), len(b))):
        out += a[i:i + 1] + b[i:i + 1]
    return out


def _worker_env(profile: bool) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow",
               PYTHONUNBUFFERED="1")
    if profile:  # per-HLO-op events in the tf.profiler trace of XLA steps
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_cpu_enable_xprof_traceme=true".strip()
    return env


def peer_rows(presets, size: int, *, train_batches=(2, 4), infer_batch: int = 1,
              steps: int = 3, project=None, peers=None, matmul_size: int = 2048,
              repeats: int = 5, num_classes: int = 21, profile_dir: str | None = None,
              torch_python: str | None = None, timeout: float = 3600, log=_log) -> list[dict]:
    """Measures this project's settings and the peer's, interleaved; returns the rows.

    Args:
        presets: deconvnet-family presets.
        size: Square input size.
        train_batches: Train batches (one task each).
        infer_batch: Inference batch (``None``: no inference task).
        steps: Timed rounds (each setting once per round; medians reported).
        project: This project's settings (``PROJECT_SETTINGS`` names; default all).
        peers: The peer's settings (``PEER_SETTINGS`` names; default all).
        matmul_size, repeats: The matmul peaks (``n``, repetitions).
        num_classes: Classes of both networks.
        profile_dir: Write a trace of one train step of each side's best setting here.
        torch_python: Interpreter of the PyTorch worker (default: this one).
        timeout: Seconds one worker command may take.
        log: Progress printer.

    Returns:
        Dicts with a ``kind``: ``"info"`` (per side: versions, threads, or ``status`` "not
        installed"), ``"measure"`` (one setting of one task: ``median_s``, ``times``,
        ``first_s``, ``gflops``, ``peak_gflops``, ``utilisation``, or ``error``), ``"ratio"``
        (per task: ``ratio`` = peer best / project best median) and ``"profile"``.
    """
    project = list(PROJECT_SETTINGS) if project is None else list(project)
    peers = list(PEER_SETTINGS) if peers is None else list(peers)
    tasks = [("train", int(b)) for b in train_batches]
    if infer_batch:
        tasks.append(("inference", int(infer_batch)))
    rows: list[dict] = []
    env = _worker_env(bool(profile_dir))
    workers: dict = {}

    def start(side):
        if workers.get(side) is None:
            workers[side] = _Worker(side, (torch_python or sys.executable) if side == "torch"
                                    else sys.executable, env)
        return workers[side]

    def call(side, command, **kwargs):
        try:
            return start(side).call(command, timeout=timeout, **kwargs)
        except WorkerError as err:
            log(str(err))
            if workers.get(side) is not None:
                workers[side].kill()
                workers[side].close()
            workers[side] = None
            return {"error": _one_line(str(err), 600), "worker_died": True}

    try:
        if peers:
            hello = call("torch", "hello")
            why = hello.get("missing") or hello.get("error")
            if why:
                status = "not installed" if "missing" in hello else "failed"
                log(f"PyTorch peer: {status} ({why})")
                rows.append({"kind": "info", "side": "peer", "setting": "torch",
                             "status": status, "detail": why,
                             "python": torch_python or sys.executable})
                if "onnxruntime" in peers:
                    rows.append({"kind": "info", "side": "peer", "setting": "onnxruntime",
                                 "status": status,
                                 "detail": "its ONNX model is the PyTorch peer's export"})
                peers = []
            else:
                versions = hello["versions"]
                missing = [k for k in ("onnxruntime", "onnx", "onnxscript") if not versions[k]]
                if "onnxruntime" in peers and missing:
                    rows.append({"kind": "info", "side": "peer", "setting": "onnxruntime",
                                 "status": "not installed", "detail": ", ".join(missing)})
                    peers = [p for p in peers if p != "onnxruntime"]
                rows.append({"kind": "info", "side": "peer", "setting": "torch",
                             "status": "ok", **hello})
        if not peers and not profile_dir:
            return rows  # nothing to compare with (a profile still measures this project)
        if project:
            hello = call("keras", "hello")
            rows.append({"kind": "info", "side": "project", "setting": "keras",
                         "status": "error" if "error" in hello else "ok", **hello})

        for preset in presets:
            for task, batch in tasks:
                rows += _run_task(call, preset, size, task, batch, project,
                                  [p for p in peers if task in PEER_SETTINGS[p][3]], steps,
                                  matmul_size, repeats, num_classes, log,
                                  profile_dir if (task, batch) == tasks[0] else None)
    finally:
        for worker in workers.values():
            if worker is not None:
                worker.close()
    return rows


def _group(name: str) -> tuple[str, str]:
    """The memory group of a setting: its precision and its model (Keras' default step with
    PyTorch's NCHW module and ONNX Runtime, the XLA step with the channels_last module)."""
    if name in PROJECT_SETTINGS:
        mode, precision, _ = PROJECT_SETTINGS[name]
        return precision, "nchw" if mode == "default" else "cl"
    fmt, _, precision, _, _ = PEER_SETTINGS[name]
    return precision, fmt


GROUP_LABELS = {"nchw": "Keras default step / PyTorch NCHW", "cl": "Keras XLA / PyTorch "
                "channels_last"}


def _measure(call, what, spec, project, peers, steps, matmul_size, repeats, log,
             tf_peak: bool = False) -> dict:
    """Sets up ``project`` (Keras worker) and ``peers`` (PyTorch worker) from ``spec``, warms
    every setting, measures the matmul peaks, then ``steps`` rounds of one timed call per
    setting, the frameworks alternating. The models stay (the caller frees them). The
    ``tf.matmul`` peaks are measured when a Keras setting is in the group or ``tf_peak``."""
    side_of = {**{n: "keras" for n in project}, **{n: "torch" for n in peers}}
    out = {"errors": {}, "first": {}, "times": {}, "setup": {}, "peak": {}, "torch_peak": {},
           "load": os.getloadavg()[0]}
    errors = out["errors"]
    for side, names in (("keras", project), ("torch", peers)):
        if not names:
            continue
        answer = call(side, "setup", settings=names, **spec)
        out["setup"][side] = answer
        for name in names:
            if "error" in answer:
                errors[name] = answer["error"]
            elif name in answer.get("errors", {}):
                errors[name] = answer["errors"][name]
    def failed(name, answer):
        # A dead worker takes its side's settings with it (a new one has no models).
        for other in ([n for n in side_of if side_of[n] == side_of[name]]
                      if answer.get("worker_died") else [name]):
            errors.setdefault(other, answer["error"])
        log(f"{what}: {name} failed: {answer['error']}")

    order = [n for n in _interleave(project, peers) if n not in errors]
    for name in order:
        if name in errors:
            continue
        answer = call(side_of[name], "warm", name=name)
        if "error" in answer:
            failed(name, answer)
        else:
            out["first"][name] = answer["first_s"]
    order = [n for n in order if n not in errors]
    if steps:
        if project or tf_peak:
            out["peak"] = call("keras", "peak", n=matmul_size, repeats=repeats)
        if peers:
            out["torch_peak"] = call("torch", "peak", n=matmul_size, repeats=repeats)
    out["times"] = {n: [] for n in order}
    for _ in range(steps):
        for name in order:
            if name in errors:
                continue
            answer = call(side_of[name], "time", name=name)
            if "error" in answer:
                failed(name, answer)
            else:
                out["times"][name].append(answer["s"])
    out["rss"] = {side: call(side, "rss").get("peak_rss_gib") for side in out["setup"]}
    return out


def _free(call, measured: dict) -> None:
    for side in measured["setup"]:
        call(side, "free")


def _run_task(call, preset, size, task, batch, project, peers, steps, matmul_size, repeats,
              num_classes, log, profile_dir) -> list[dict]:
    """One task (train step at ``batch``, or inference) of one preset: per memory group
    (``_group``: at most one Keras model and one PyTorch module alive, so that the full network
    fits in 24 GiB) the group's settings interleaved; then the two sides' best settings
    head to head (interleaved again) unless they were in the same group; the ratio row; and,
    with ``profile_dir`` (train tasks), a trace of one step of each best setting."""
    what = f"{preset} {task} batch {batch} {size}x{size}"
    spec = {"preset": preset, "size": size, "task": task, "batch": batch,
            "num_classes": num_classes}
    side_of = {**{n: "project" for n in project}, **{n: "peer" for n in peers}}
    label = {**{n: PROJECT_SETTINGS[n][2] for n in project},
             **{n: PEER_SETTINGS[n][4] for n in peers}}
    precision = {**{n: PROJECT_SETTINGS[n][1] for n in project},
                 **{n: PEER_SETTINGS[n][2] for n in peers}}
    groups = list(dict.fromkeys(_group(n) for n in _interleave(project, peers)))
    results: dict = {}
    flops = params_keras = params_torch = None
    for group in groups:
        g_project = [n for n in project if _group(n) == group]
        g_peers = [n for n in peers if _group(n) == group]
        log(f"{what}: {group[0]} {GROUP_LABELS[group[1]]}: {', '.join(g_project + g_peers)}")
        m = _measure(call, what, spec, g_project, g_peers, steps, matmul_size, repeats, log,
                     tf_peak=bool(project))
        _free(call, m)
        flops = flops or m["setup"].get("keras", {}).get("flops")
        params_keras = params_keras or m["setup"].get("keras", {}).get("params")
        params_torch = params_torch or m["setup"].get("torch", {}).get("params")
        for name in g_project + g_peers:
            results[name] = {"group": group, "error": m["errors"].get(name),
                             "times": m["times"].get(name), "first_s": m["first"].get(name),
                             "peak": m["peak"], "torch_peak": m["torch_peak"],
                             "load": m["load"],
                             "rss": m["rss"].get("keras" if side_of[name] == "project"
                                                 else "torch"),
                             "onnx": m["setup"].get("torch", {}).get("onnx")
                             if name == "onnxruntime" else None}

    work = (3 if task == "train" else 1) * (flops or 0) * batch
    rows = []
    for name in _interleave(project, peers):
        res = results[name]
        row = {"kind": "measure", "preset": preset, "size": size, "task": task, "batch": batch,
               "side": side_of[name], "setting": name, "label": label[name],
               "precision": precision[name], "group": f"{res['group'][0]}, "
               f"{GROUP_LABELS[res['group'][1]]}",
               "params": params_keras if side_of[name] == "project" else params_torch,
               "worker_peak_rss_gib": res["rss"], "load_1min": res["load"]}
        if res["error"] or not res["times"]:
            row["error"] = res["error"] or "no timed call"
        else:
            median = statistics.median(res["times"])
            pk = res["peak"].get(precision[name]) if "error" not in res["peak"] else None
            row.update(median_s=median, times=res["times"], first_s=res["first_s"],
                       images_per_s=batch / median, flops_per_image=flops,
                       gflops=work / median / 1e9 if flops else None, peak_gflops=pk,
                       torch_peak_gflops=res["torch_peak"].get(precision[name]),
                       utilisation=work / median / 1e9 / pk if flops and pk else None)
            log(f"{what}: {name} median {median:.4f} s of {len(res['times'])} "
                f"(first {res['first_s']:.1f} s)")
        if res["onnx"]:
            row["onnx"] = res["onnx"]
        rows.append(row)

    best = {}
    for side in ("project", "peer"):
        done = [r for r in rows if r["side"] == side and "median_s" in r]
        best[side] = min(done, key=lambda r: r["median_s"]) if done else None
    both = bool(best["project"] and best["peer"])
    head_to_head = both and results[best["project"]["setting"]]["group"] != \
        results[best["peer"]["setting"]]["group"]
    profile = bool(profile_dir and task == "train" and (best["project"] or best["peer"]))
    final = None
    if head_to_head or profile:
        names = {side: [best[side]["setting"]] if best[side] else [] for side in best}
        log(f"{what}: " + ("head to head: " if head_to_head else "profile: ")
            + " vs ".join(n[0] for n in names.values() if n))
        final = _measure(call, what, spec, names["project"], names["peer"],
                         steps if head_to_head else 0, matmul_size, repeats, log)
    if both:
        p_name, q_name = best["project"]["setting"], best["peer"]["setting"]
        p_s, q_s, source = best["project"]["median_s"], best["peer"]["median_s"], "same group"
        if head_to_head:
            p_t, q_t = final["times"].get(p_name), final["times"].get(q_name)
            if p_t and q_t:
                p_s, q_s, source = statistics.median(p_t), statistics.median(q_t), "head to head"
            else:
                source = ("groups (head to head failed: "
                          + (final["errors"].get(p_name) or final["errors"].get(q_name)
                             or "no timed call") + ")")
        rows.append({"kind": "ratio", "preset": preset, "size": size, "task": task,
                     "batch": batch, "ratio": q_s / p_s, "source": source,
                     "project_best": p_name, "project_label": label[p_name], "project_s": p_s,
                     "peer_best": q_name, "peer_label": label[q_name], "peer_s": q_s,
                     "params_equal": params_keras == params_torch})
        log(f"{what}: ratio {q_s / p_s:.2f}x ({p_name} vs {q_name}, {source})")
    if profile:
        for side, worker in (("project", "keras"), ("peer", "torch")):
            if not best[side] or best[side]["setting"] in final["errors"]:
                continue
            name = best[side]["setting"]
            base = Path(profile_dir) / f"{preset}_{task}_b{batch}_{name}"
            path = str(base) if worker == "keras" else str(base) + ".trace.json"
            answer = call(worker, "profile", name=name, path=path)
            rows.append({"kind": "profile", "preset": preset, "size": size, "task": task,
                         "batch": batch, "side": side, "setting": name,
                         "label": label[name], **answer})
            if "top" in answer:
                Path(str(base) + ".top_ops.txt").write_text(_format_top(rows[-1]))
    if final is not None:
        _free(call, final)
    return rows


# --------------------------------------------------------------------------------------------
# Output


def _format_top(profile: dict) -> str:
    head = (f"{profile['label']} ({profile['preset']}, {profile['task']} batch "
            f"{profile['batch']}): top ops by self time, {profile['source']}; trace "
            f"{profile['trace']}\n")
    if "table" in profile:
        return head + profile["table"]
    lines = ["| op | count | self ms | share |", "|---|---:|---:|---:|"]
    for t in profile["top"]:
        share = "-" if t["share"] is None else f"{100 * t['share']:.1f}%"
        lines.append(f"| {t['op'].replace('|', '/')} | {t['count']} | {t['self_ms']:.1f} "
                     f"| {share} |")
    return head + "\n".join(lines) + f"\n(all ops: {profile['total_ms']:.1f} ms)\n"


def format_rows(rows: list[dict]) -> str:
    """Per-setting medians and ratio rows as a plain markdown table."""
    lines = ["| preset | task | side | setting | median | first call | of matmul peak |",
             "|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        if r["kind"] == "info":
            lines.append(f"| - | - | {r['side']} | {r.get('setting', '')} | {r['status']} "
                         f"{r.get('detail') or ''} | | |")
        elif r["kind"] == "measure":
            what = f"{r['task']} b{r['batch']}"
            if "error" in r:
                lines.append(f"| {r['preset']} | {what} | {r['side']} | {r['label']} | "
                             f"failed: {r['error'].replace('|', '/')} | | |")
                continue
            util = "-" if r["utilisation"] is None else f"{100 * r['utilisation']:.0f}%"
            lines.append(f"| {r['preset']} | {what} | {r['side']} | {r['label']} | "
                         f"{r['median_s']:.4f} s | {r['first_s']:.1f} s | {util} |")
        elif r["kind"] == "ratio":
            lines.append(f"| {r['preset']} | {r['task']} b{r['batch']} | ratio | "
                         f"{r['project_label']} vs {r['peer_label']} | {r['ratio']:.2f}x | | |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        return _serve(argv[1])
    parser = argparse.ArgumentParser(prog="bench_peers.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["deconvnet_vgg16",
                                                         "deconvnet_vgg16_compact"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--train-batches", nargs="+", type=int, default=[2, 4])
    parser.add_argument("--infer-batch", type=int, default=1, help="0: no inference task")
    parser.add_argument("--steps", type=int, default=3, help="timed rounds")
    parser.add_argument("--peers", default="all",
                        help=f"all, torch, none or a subset of {','.join(PEER_SETTINGS)}")
    parser.add_argument("--project", nargs="+", default=list(PROJECT_SETTINGS),
                        choices=list(PROJECT_SETTINGS))
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5, help="matmul repetitions")
    parser.add_argument("--profile", default=None, metavar="DIR",
                        help="trace one train step of each side's best setting into DIR")
    parser.add_argument("--torch-python", default=None, help="interpreter with PyTorch")
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args(argv)
    if error := existing_output_error(args.json_path):
        parser.error(error)
    try:
        peers = parse_peers(args.peers)
    except ValueError as err:
        parser.error(str(err))
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    rows = peer_rows(args.presets, args.size, train_batches=args.train_batches,
                     infer_batch=args.infer_batch, steps=args.steps, project=args.project,
                     peers=peers, matmul_size=args.matmul_size, repeats=args.repeats,
                     profile_dir=args.profile, torch_python=args.torch_python)
    print(format_rows(rows))
    for r in rows:
        if r["kind"] == "profile" and "top" in r:
            print(_format_top(r))
    if args.json_path:
        write_json_new(args.json_path, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
