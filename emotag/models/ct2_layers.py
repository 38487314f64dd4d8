"""Keep only the first N encoder layers of a CTranslate2 Whisper model, in memory.

Why: the emotion in a voice is read best from Whisper's *middle* encoder layers, not its last one (the
last is shaped for transcription). On the 6 speaker-independent RAVDESS folds, pooled states of the
packaged tiny.en encoder scored unweighted accuracy 0.720 / 0.765 / 0.739 / 0.713 after 1 / 2 / 3 / 4
layers with each clip alone (logistic regression; 0.833 / 0.852 / 0.819 / 0.785 per speaker,
2026-11-26), and two layers cost about half of four. CTranslate2 can only run a whole model, so the
model file is rewritten without the later encoder layers (the final layer norm stays and is applied
after the last kept layer) and handed to CTranslate2 from memory (its ``files=`` argument); nothing is
written to disk and the packaged file stays untouched.

Written by hand because no library reads this format: CTranslate2 writes it
(``ctranslate2.specs.model_spec.ModelSpec._serialize``, binary version 6) and reads it only in C++.
Layout, little-endian: ``u32 version``, ``str spec name``, ``u32 revision``, ``u32 count``, then per
variable ``str name``, ``u8 rank``, ``u32 × rank dims``, ``u8 dtype``, ``u32 nbytes``, raw bytes; then
``u32 aliases`` and ``str alias``, ``str target`` pairs. A ``str`` is ``u16 length`` (with the NUL)
followed by UTF-8 bytes and a NUL.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from emotag.errors import ModelError

if TYPE_CHECKING:
    import numpy.typing as npt

    from emotag.models.ffn_cut import FfnCut

_LAYER = re.compile(r"encoder/layer_(\d+)/")
SUPPORTED_VERSIONS = (5, 6)


@dataclass(frozen=True, slots=True)
class Variable:
    """One named tensor of a model file (``data`` is its raw bytes)."""

    name: str
    dims: tuple[int, ...]
    dtype: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A parsed ``model.bin``."""

    version: int
    spec: str
    revision: int
    variables: tuple[Variable, ...]
    aliases: tuple[tuple[str, str], ...]

    def encoder_layers(self) -> int:
        """How many encoder layers the file holds."""
        found = {int(m.group(1)) for v in self.variables if (m := _LAYER.match(v.name))}
        return max(found) + 1 if found else 0


def parse(blob: bytes, source: str = "model.bin") -> ModelFile:
    """Parse a CTranslate2 ``model.bin``.

    Raises:
        ModelError: not a model file of a supported binary version, or truncated.
    """
    pos = 0

    def take(fmt: str) -> int:
        nonlocal pos
        (value,) = struct.unpack_from("<" + fmt, blob, pos)
        pos += struct.calcsize(fmt)
        return int(value)

    def text() -> str:
        nonlocal pos
        n = take("H")
        value = blob[pos : pos + n - 1].decode("utf-8")
        pos += n
        return value

    try:
        version = take("I")
        if version not in SUPPORTED_VERSIONS:
            raise ModelError(f"{source}: CTranslate2 binary version {version} is not supported")
        spec, revision = text(), take("I")
        variables = []
        for _ in range(take("I")):
            name = text()
            dims = tuple(take("I") for _ in range(take("B")))
            dtype, nbytes = take("B"), take("I")
            if pos + nbytes > len(blob):
                raise ModelError(f"{source}: truncated model file (variable {name})")
            variables.append(Variable(name, dims, dtype, blob[pos : pos + nbytes]))
            pos += nbytes
        aliases = tuple((text(), text()) for _ in range(take("I")))
    except (struct.error, UnicodeDecodeError) as exc:
        raise ModelError(f"{source}: not a CTranslate2 model file ({exc})") from exc
    return ModelFile(version, spec, revision, tuple(variables), aliases)


def serialise(model: ModelFile) -> bytes:
    """The inverse of :func:`parse`."""
    out = bytearray()

    def text(s: str) -> None:
        raw = s.encode("utf-8")
        out.extend(struct.pack("<H", len(raw) + 1) + raw + b"\0")

    out.extend(struct.pack("<I", model.version))
    text(model.spec)
    out.extend(struct.pack("<II", model.revision, len(model.variables)))
    for v in model.variables:
        text(v.name)
        out.extend(struct.pack("<B", len(v.dims)))
        out.extend(struct.pack(f"<{len(v.dims)}I", *v.dims))
        out.extend(struct.pack("<BI", v.dtype, len(v.data)))
        out.extend(v.data)
    out.extend(struct.pack("<I", len(model.aliases)))
    for alias, target in model.aliases:
        text(alias)
        text(target)
    return bytes(out)


def keep_encoder_layers(
    blob: bytes, layers: int, source: str = "model.bin", cuts: Sequence[FfnCut] = ()
) -> bytes:
    """``model.bin`` bytes with only encoder layers ``0 .. layers-1`` (the rest of the model unchanged), and
    with the feed-forward blocks narrowed by ``cuts`` (:mod:`emotag.models.ffn_cut`; stored float16, as
    the packaged file stores its weights, and quantised by CTranslate2 as it loads like every other).

    Raises:
        ModelError: ``layers`` is below 1 or above what the model has, or a cut does not fit the file.
    """
    model = parse(blob, source)
    have = model.encoder_layers()
    if not 1 <= layers <= have:
        raise ModelError(f"{source}: cannot keep {layers} encoder layers of {have}")
    if any(c.layer >= layers for c in cuts):
        raise ModelError(f"{source}: an encoder cut is for a layer beyond the {layers} kept")
    if layers == have and not cuts:
        return blob
    kept = tuple(
        v for v in model.variables if not ((m := _LAYER.match(v.name)) and int(m.group(1)) >= layers)
    )
    if cuts:
        kept = _cut_variables(kept, cuts, source)
    return serialise(ModelFile(model.version, model.spec, model.revision, kept, model.aliases))


def _cut_variables(
    variables: tuple[Variable, ...], cuts: Sequence[FfnCut], source: str
) -> tuple[Variable, ...]:
    """``variables`` with each cut layer's four feed-forward tensors replaced (see
    :func:`keep_encoder_layers`)."""
    from emotag.models.ffn_cut import tensor_names

    float16 = 4  # CTranslate2's dtype code
    replaced: dict[str, npt.NDArray[np.float16]] = {}
    by_name = {v.name: v for v in variables}
    for cut in cuts:
        n_w1, n_b1, n_w2, n_b2 = tensor_names(cut.layer)
        up, up_bias = by_name.get(n_w1), by_name.get(n_b1)
        if up is None or up_bias is None or up.dtype != float16 or up_bias.dtype != float16:
            raise ModelError(f"{source}: no float16 feed-forward block in encoder layer {cut.layer} to cut")
        if int(cut.keep.max()) >= up.dims[0] or cut.weight.shape[0] != up.dims[1]:
            raise ModelError(f"{source}: the encoder cut of layer {cut.layer} does not fit the file's shapes")
        w1 = np.frombuffer(up.data, np.float16).reshape(up.dims)
        replaced[n_w1] = w1[cut.keep]
        replaced[n_b1] = np.frombuffer(up_bias.data, np.float16)[cut.keep]
        replaced[n_w2] = cut.weight.astype(np.float16)
        replaced[n_b2] = cut.bias.astype(np.float16)
    return tuple(
        Variable(
            v.name, tuple(replaced[v.name].shape), float16, np.ascontiguousarray(replaced[v.name]).tobytes()
        )
        if v.name in replaced
        else v
        for v in variables
    )
