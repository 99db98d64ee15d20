"""TensorBoard ``Event`` protos, decoded by hand, and their tags in sfttop's vocabulary.

No protobuf package: only the few fields a scalar or a text summary needs are read, with a
minimal wire-format decoder; every other field is skipped by its wire type. Anything that does
not decode is ``Malformed`` (the caller counts it and moves on).

Field numbers (tensorboard/compat/proto): ``Event`` wall_time=1 (double), step=2 (int64),
file_version=3, summary=5; ``Summary`` value=1; ``Summary.Value`` tag=1, simple_value=2 (float),
tensor=8, metadata=9 (``SummaryMetadata`` plugin_data=1 -> ``PluginData`` plugin_name=1);
``TensorProto`` dtype=1, tensor_shape=2 (dim=1 -> size=1), tensor_content=4, float_val=5,
double_val=6, int_val=7, string_val=8, int64_val=10, half_val=13.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass, field

TENSORBOARD = "tensorboard"  # the format name a run shows (parse.INPUT_FORMATS lists it)
EVENTS_PREFIX = "events.out.tfevents."
MAX_TEXT = 1 << 20  # a text summary longer than this is not read (TrainingArguments are ~5 KiB)

_D = struct.Struct("<d")
_F = struct.Struct("<f")

# TensorProto dtypes that can hold a scalar, and how tensor_content spells one element.
_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_STRING, _DT_INT64, _DT_BFLOAT16, _DT_HALF = 1, 2, 3, 7, 9, 14, 19
_CONTENT = {_DT_FLOAT: "<f", _DT_DOUBLE: "<d", _DT_INT32: "<i", _DT_INT64: "<q", _DT_HALF: "<e"}


class Malformed(ValueError):
    """Bytes that are not the proto they should be."""


@dataclass(slots=True)
class TBEvent:
    wall_time: float = 0.0
    step: int = 0
    file_version: str | None = None
    scalars: list[tuple[str, float]] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise Malformed("varint too long")


def _fields(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(field number, wire type, value or start, end) for each field in ``buf[start:end]``:
    for varints the value and 0, for fixed and length-delimited fields their byte range."""
    out = []
    pos = start
    try:
        while pos < end:
            key, pos = _varint(buf, pos)
            num, wt = key >> 3, key & 7
            if wt == 0:
                v, pos = _varint(buf, pos)
                out.append((num, 0, v, 0))
                continue
            if wt == 2:
                n, pos = _varint(buf, pos)
                a, pos = pos, pos + n
            elif wt == 1:
                a, pos = pos, pos + 8
            elif wt == 5:
                a, pos = pos, pos + 4
            else:
                raise Malformed(f"wire type {wt}")
            if pos > end or num == 0:
                raise Malformed("field past its message")
            out.append((num, wt, a, pos))
    except IndexError:
        raise Malformed("truncated varint") from None
    return out


proto_fields = _fields  # the wire reader, for other protobuf records read by hand (W&B's datastore)


# The event of one ``add_scalar`` with a simple_value (what torch, tensorboardX and TF1 write):
# wall_time, step, then a Summary holding one Value of a tag (< 128 bytes) and a float. Read
# with one C-level match instead of the general decoder: a run logs hundreds of thousands.
_SIMPLE = re.compile(rb"\x09(.{8})\x10([\x80-\xff]{0,9}[\x00-\x7f])\x2a([\x00-\x7f])\x0a([\x00-\x7f])\x0a([\x00-\x7f])", re.S)


def simple_scalar(data: bytes) -> tuple[int, bytes, float] | None:
    """(step, tag, value) when ``data`` is exactly the common one-scalar event; None otherwise
    (then ``decode_event`` reads it)."""
    m = _SIMPLE.match(data)
    if m is None:
        return None
    e = m.end()
    t = data[e - 1]
    if len(data) != e + t + 5 or data[e + t] != 0x15 or data[e - 3] != t + 7 or data[e - 5] != t + 9:
        return None
    raw = m.group(2)
    if len(raw) == 1:
        step = raw[0]
    else:
        step = 0
        for i, b in enumerate(raw):
            step |= (b & 0x7F) << (7 * i)
        if step >= 1 << 63:
            step -= 1 << 64
    value: float = _F.unpack_from(data, e + t + 1)[0]
    return step, data[e : e + t], value


def decode_event(data: bytes) -> TBEvent:
    """The parts of one ``Event`` sfttop reads (raises ``Malformed``)."""
    ev = TBEvent()
    for num, wt, a, b in _fields(data, 0, len(data)):
        if num == 1 and wt == 1:
            ev.wall_time = _D.unpack_from(data, a)[0]
        elif num == 2 and wt == 0:
            ev.step = _signed(a & 0xFFFFFFFFFFFFFFFF)
        elif num == 3 and wt == 2:
            ev.file_version = data[a:b].decode("utf-8", "replace")
        elif num == 5 and wt == 2:
            for vnum, vwt, va, vb in _fields(data, a, b):
                if vnum == 1 and vwt == 2:
                    _value(data, va, vb, ev)
    return ev


def _value(buf: bytes, start: int, end: int, ev: TBEvent) -> None:
    tag = ""
    simple: float | None = None
    tensor: tuple[int, int] | None = None
    plugin = ""
    for num, wt, a, b in _fields(buf, start, end):
        if num == 1 and wt == 2:
            tag = buf[a:b].decode("utf-8", "replace")
        elif num == 2 and wt == 5:
            simple = _F.unpack_from(buf, a)[0]
        elif num == 8 and wt == 2:
            tensor = (a, b)
        elif num == 9 and wt == 2:
            for mnum, mwt, ma, mb in _fields(buf, a, b):
                if mnum == 1 and mwt == 2:
                    for pnum, pwt, pa, pb in _fields(buf, ma, mb):
                        if pnum == 1 and pwt == 2:
                            plugin = buf[pa:pb].decode("utf-8", "replace")
    if simple is not None:
        ev.scalars.append((tag, simple))
    elif tensor is not None:
        if plugin == "scalars":
            v = _tensor_scalar(buf, *tensor)
            if v is not None:
                ev.scalars.append((tag, v))
        elif plugin == "text":
            t = _tensor_text(buf, *tensor)
            if t is not None:
                ev.texts.append((tag, t))


def _packed(buf: bytes, a: int, b: int, wt: int, fmt: str) -> list[float]:
    """A repeated numeric field: packed (one length-delimited run) or one element. At most two
    values are read: two already mean "not a scalar"."""
    if wt == 2:
        if fmt in ("<f", "<d"):
            size = 4 if fmt == "<f" else 8
            if (b - a) % size:
                raise Malformed("packed run of partial elements")
            return [x for (x,) in struct.iter_unpack(fmt, buf[a : min(b, a + 2 * size)])]
        vals: list[int] = []
        pos = a
        try:
            while pos < b and len(vals) < 2:
                v, pos = _varint(buf, pos)
                vals.append(v)
        except IndexError:
            raise Malformed("truncated varint") from None
        return [float(_signed(v)) for v in vals] if fmt != "half" else [_half(v) for v in vals]
    if wt == 5 and fmt == "<f":
        return [_F.unpack_from(buf, a)[0]]
    if wt == 1 and fmt == "<d":
        return [_D.unpack_from(buf, a)[0]]
    if wt == 0 and fmt in ("int", "half"):
        return [float(_signed(a)) if fmt == "int" else _half(a)]
    raise Malformed("repeated field of the wrong wire type")


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _half(bits: int) -> float:
    value: float = struct.unpack("<e", struct.pack("<H", bits & 0xFFFF))[0]
    return value


def _bfloat16(bits: int) -> float:
    value: float = struct.unpack("<f", struct.pack("<I", (bits & 0xFFFF) << 16))[0]
    return value


def _tensor_scalar(buf: bytes, start: int, end: int) -> float | None:
    """The value of a one-element numeric ``TensorProto``; None for anything else."""
    dtype = 0
    elements = 1
    content: bytes | None = None
    vals: list[float] = []
    for num, wt, a, b in _fields(buf, start, end):
        if num == 1 and wt == 0:
            dtype = a
        elif num == 2 and wt == 2:
            for dnum, dwt, da, db in _fields(buf, a, b):
                if dnum == 1 and dwt == 2:
                    for snum, swt, sa, _sb in _fields(buf, da, db):
                        if snum == 1 and swt == 0 and sa != 1:
                            elements = 0  # a dimension other than 1: more (or fewer) than one element
        elif num == 4 and wt == 2:
            content = buf[a:b]
        elif len(vals) > 1:
            continue
        elif num == 5:
            vals += _packed(buf, a, b, wt, "<f")
        elif num == 6:
            vals += _packed(buf, a, b, wt, "<d")
        elif num in (7, 10):
            vals += _packed(buf, a, b, wt, "int")
        elif num == 13:
            vals += (
                [_bfloat16(int(h)) for h in _packed(buf, a, b, wt, "int")]
                if dtype == _DT_BFLOAT16
                else _packed(buf, a, b, wt, "half")
            )
    if elements != 1:
        return None
    if content is not None:
        if dtype == _DT_BFLOAT16 and len(content) == 2:
            return _bfloat16(int.from_bytes(content, "little"))
        fmt = _CONTENT.get(dtype)
        if fmt is None or len(content) != struct.calcsize(fmt):
            return None
        return float(struct.unpack(fmt, content)[0])
    # A proto lists one value for a tensor whose elements are all the same.
    return vals[0] if len(vals) == 1 else None


def _tensor_text(buf: bytes, start: int, end: int) -> str | None:
    dtype = 0
    text: str | None = None
    for num, wt, a, b in _fields(buf, start, end):
        if num == 1 and wt == 0:
            dtype = a
        elif num == 8 and wt == 2 and text is None and b - a <= MAX_TEXT:
            text = buf[a:b].decode("utf-8", "replace")
    return text if dtype == _DT_STRING else None


# -- tags -----------------------------------------------------------------------------------
# What a tag means, for the HF TensorBoardCallback (``rewrite_logs``: eval_x -> eval/x,
# test_x -> test/x, anything else -> train/x) and for Megatron-LM's tensorboard writer (tags
# with spaces and dashes, each also written "... vs samples" with the consumed samples as the
# step: those copies are skipped). The value is the key the same metric has in an HF log dict,
# so a group of tags becomes the dict ``LogParser`` reads for the stdout line of the same call.
_MEGATRON: dict[str, str] = {
    "lm loss": "loss",
    "grad-norm": "grad_norm",
    "learning-rate": "learning_rate",
    "decoupled-learning-rate": "decoupled_learning_rate",
    "iteration-time": "iteration_time",
    "loss-scale": "loss_scale",
    "batch-size": "batch_size",
    "num-zeros": "num_zeros",
    "params-norm": "params_norm",
    "world-size": "world_size",
    "throughput": "throughput",
}
# Train-family tags that Trainer.log adds to every call, eval or train: they never start one.
_SHARED = frozenset({"epoch", "num_input_tokens_seen"})
_POSITION = frozenset({"step", "global_step", "current_steps", "total_steps", "iteration", "iter"})
# The end-of-training dict (``train()``'s metrics) begins with this key.
_SUMMARY_FIRST = "train_runtime"
_SEP = re.compile(r"[-\s]+")


def tag_key(tag: str) -> tuple[str, str] | None:
    """(HF log key, family) of a scalar tag; family is "train", "eval" or "shared". None: not
    a metric sfttop reads (Megatron's per-sample copies, a tag naming the step itself)."""
    key, family = _tag_key(tag)
    if key in _POSITION or tag.endswith(" vs samples"):
        return None  # the event's own step places the dict; a tag must not move it
    return key, family


def _tag_key(tag: str) -> tuple[str, str]:
    if tag.startswith("train/"):
        key = tag[6:]
        return key, "shared" if key in _SHARED else "train"
    if tag.startswith("eval/"):
        return "eval_" + tag[5:], "eval"
    if tag.startswith("test/"):
        return "test_" + tag[5:], "eval"
    low = tag.lower()
    if low.endswith(" validation ppl"):
        base = _MEGATRON.get(low[:-15], _SEP.sub("_", low[:-15]))
        return f"eval_{base}_ppl" if base != "loss" else "eval_ppl", "eval"
    if low.endswith(" validation"):
        return "eval_" + _MEGATRON.get(low[:-11], _SEP.sub("_", low[:-11])), "eval"
    mapped = _MEGATRON.get(low)
    if mapped is not None:
        return mapped, "train"
    if " " in tag or ("-" in tag and "/" not in tag):
        return _SEP.sub("_", low), "train"  # Megatron's timers and memory tags: mem-reserved-bytes
    # Other writers' own names (Lightning's val_loss, epoch): validation metrics are an eval dict.
    if low in _SHARED:
        return tag, "shared"
    return tag, "eval" if low.startswith(("eval", "val_", "val/", "validation")) else "train"


class Grouper:
    """Scalar events, one tag each, back into the log dicts they were written from.

    The HF callback writes one ``add_scalar`` per key of an ``on_log`` dict, all at the same
    step; the train log of a step and the evaluation (or end-of-training summary) that follows
    it share that step. A new dict starts when the step changes, when a tag comes again, when
    the family changes (train -> eval), or at the summary's first key.
    """

    def __init__(self) -> None:
        self.step: int | None = None
        self.offset = -1
        self.family = ""
        self.keys: dict[str, float] = {}
        self._last = ""

    def add(self, step: int, key: str, family: str, value: float, offset: int) -> tuple[dict[str, object], int] | None:
        """Take one scalar (from the record at ``offset``); return the dict it closed, if any,
        with the offset of its first record."""
        done = None
        if self.keys and (
            step != self.step
            or key in self.keys
            or (family != "shared" and self.family and family != self.family)
            or (key == _SUMMARY_FIRST and self._last != "num_input_tokens_seen")
        ):
            done = self.close()
        if not self.keys:
            self.step = step
            self.offset = offset
        if family != "shared" and not self.family:
            self.family = family
        self.keys[key] = value
        self._last = key
        return done

    def close(self) -> tuple[dict[str, object], int] | None:
        """The dict being built (None when empty) with its step, and the offset of its first
        record; the grouper starts afresh."""
        if not self.keys:
            return None
        out: dict[str, object] = dict(self.keys)
        out["step"] = self.step
        self.keys = {}
        self.family = ""
        self._last = ""
        return out, self.offset

    def reopen(self, step: int, keys: dict[str, float], family: str, last: str, offset: int) -> None:
        """Be, from empty, where adding ``keys`` one by one at ``step`` would have left it
        (``family`` and ``last`` as that would have set them)."""
        self.step, self.keys, self.family, self._last, self.offset = step, keys, family, last, offset

    @property
    def pending(self) -> bool:
        return bool(self.keys)


@dataclass(frozen=True)
class CyclePlan:
    """How a ``Grouper`` starting empty splits records of one step with the given tags into
    dicts: each piece's keys and the places of its records; the last piece is left open."""

    pieces: tuple[tuple[tuple[str, ...], tuple[int, ...]], ...]
    family: str  # the open piece's
    last: str


def plan_cycle(keys: list[tuple[str, str] | tuple[()]]) -> CyclePlan:
    """The plan for records whose tags read as ``keys`` (``()``: a tag that is not read)."""
    g = Grouper()
    pieces: list[tuple[tuple[str, ...], tuple[int, ...]]] = []
    idx: list[int] = []
    for j, tk in enumerate(keys):
        if not tk:
            continue
        before = tuple(g.keys)
        if g.add(0, tk[0], tk[1], 0.0, j) is not None:
            pieces.append((before, tuple(idx)))
            idx = []
        idx.append(j)
    if idx:
        pieces.append((tuple(g.keys), tuple(idx)))
    return CyclePlan(tuple(pieces), g.family, g._last)


@dataclass
class TrainArgs:
    """What a run's arguments text says about its schedule (HF ``args`` JSON, Megatron's
    one text summary per argument)."""

    logging_steps: int | None = None
    max_steps: int | None = None
    eval_steps: int | None = None


def _positive_int(v: object) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int) and v > 0:
        return v
    if isinstance(v, float) and math.isfinite(v) and v >= 1:
        return int(v)
    if isinstance(v, str):
        try:
            return _positive_int(float(v)) if len(v) < 24 else None
        except ValueError:
            return None
    return None


def read_args(tag: str, text: str, args: TrainArgs) -> bool:
    """Update ``args`` from one text summary; True when it was the HF arguments JSON (the
    start of a ``train()`` call)."""
    if tag == "args/text_summary":
        try:
            obj = json.loads(text)  # json, not orjson: json.dumps may have written NaN
        except (ValueError, RecursionError):
            return False
        if not isinstance(obj, dict):
            return False
        args.logging_steps = _positive_int(obj.get("logging_steps"))
        args.max_steps = _positive_int(obj.get("max_steps"))
        # HF: eval_steps defaults to logging_steps.
        args.eval_steps = _positive_int(obj.get("eval_steps")) or args.logging_steps
        return True
    name = tag[: -len("/text_summary")] if tag.endswith("/text_summary") else ""
    if name == "train_iters":
        args.max_steps = _positive_int(text.strip())
    elif name == "log_interval":
        args.logging_steps = _positive_int(text.strip())
    elif name == "eval_interval":
        args.eval_steps = _positive_int(text.strip())
    return False
