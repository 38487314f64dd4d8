"""One emotion -> colour palette, and its translation into each host's fixed marker colours.

Why: every host has its own closed set of marker colours (Resolve 16 names, Avid 8, Premiere 8 indices,
OpenTimelineIO's ``MarkerColor`` names) or free RGB (Reaper, subtitles). An editor should see *joy* in
the same colour family everywhere, so emotag defines one RGB palette and an explicit, hand-picked host
colour per emotion for the defaults (nearest-RGB alone gives poor picks for greys, e.g. "neutral").
A user palette (JSON file) may give only RGB, in which case the host colour is the nearest of the host's
colours by RGB distance, or may pin host names explicitly::

    {"joy": "#FFD700", "anger": {"rgb": "#FF0000", "resolve": "Red", "avid": "red", "premiere": 1}}

Host colour sets (names as the hosts spell them):

* Resolve markers: Blue, Cyan, Green, Yellow, Red, Pink, Purple, Fuchsia, Rose, Lavender, Sky, Mint,
  Lemon, Sand, Cocoa, Cream (``ResolveColor`` prefix in EDLs; bare names in ``AddMarker``).
* Avid Media Composer locators: red, green, blue, cyan, magenta, yellow, black, white.
* Premiere Pro ``marker.setColorByIndex(i)``: 0 green, 1 red, 2 purple, 3 orange, 4 yellow, 5 white,
  6 blue, 7 cyan.
* OpenTimelineIO ``MarkerColor``: PINK, RED, ORANGE, YELLOW, GREEN, CYAN, BLUE, PURPLE, MAGENTA, BLACK,
  WHITE.
* Final Cut Pro markers have no colour by type: emotag uses keywords per emotion there instead.

The RGB values given for host colours are approximations used only to pick the nearest colour.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from emotag.errors import InputError
from emotag.timeline import LABELS

__all__ = [
    "AVID_COLORS",
    "DEFAULT_PALETTE",
    "OTIO_COLORS",
    "PREMIERE_COLORS",
    "RESOLVE_COLORS",
    "EmotionColor",
    "Palette",
    "load_palette",
    "parse_rgb",
    "rgb_hex",
]

RGB = tuple[int, int, int]

RESOLVE_COLORS: Mapping[str, RGB] = MappingProxyType(
    {
        "Blue": (0, 112, 255),
        "Cyan": (0, 206, 208),
        "Green": (0, 173, 0),
        "Yellow": (240, 220, 0),
        "Red": (225, 20, 20),
        "Pink": (255, 80, 170),
        "Purple": (140, 40, 220),
        "Fuchsia": (200, 0, 140),
        "Rose": (255, 150, 170),
        "Lavender": (170, 150, 230),
        "Sky": (130, 200, 255),
        "Mint": (120, 230, 170),
        "Lemon": (240, 245, 120),
        "Sand": (200, 170, 120),
        "Cocoa": (110, 75, 50),
        "Cream": (250, 240, 210),
    }
)
AVID_COLORS: Mapping[str, RGB] = MappingProxyType(
    {
        "red": (255, 0, 0),
        "green": (0, 200, 0),
        "blue": (0, 0, 255),
        "cyan": (0, 255, 255),
        "magenta": (255, 0, 255),
        "yellow": (255, 255, 0),
        "black": (0, 0, 0),
        "white": (255, 255, 255),
    }
)
#: Premiere's marker colour indices, in index order.
PREMIERE_COLORS: tuple[tuple[str, RGB], ...] = (
    ("green", (0, 200, 0)),
    ("red", (230, 30, 30)),
    ("purple", (150, 60, 200)),
    ("orange", (255, 140, 0)),
    ("yellow", (240, 220, 0)),
    ("white", (255, 255, 255)),
    ("blue", (30, 90, 255)),
    ("cyan", (0, 210, 220)),
)
OTIO_COLORS: Mapping[str, RGB] = MappingProxyType(
    {
        "PINK": (255, 105, 180),
        "RED": (230, 30, 30),
        "ORANGE": (255, 140, 0),
        "YELLOW": (240, 220, 0),
        "GREEN": (0, 180, 0),
        "CYAN": (0, 210, 220),
        "BLUE": (30, 90, 255),
        "PURPLE": (140, 50, 210),
        "MAGENTA": (230, 0, 230),
        "BLACK": (0, 0, 0),
        "WHITE": (255, 255, 255),
    }
)


@dataclass(frozen=True, slots=True)
class EmotionColor:
    """The colour of one emotion in every host's terms.

    Attributes:
        rgb: the colour as (r, g, b) 0-255 (subtitles, Reaper).
        resolve: Resolve marker colour name (``"Blue"``).
        avid: Avid locator colour (``"blue"``).
        premiere: Premiere ``setColorByIndex`` index (0-7).
        otio: OpenTimelineIO ``MarkerColor`` name (``"BLUE"``).
    """

    rgb: RGB
    resolve: str
    avid: str
    premiere: int
    otio: str

    @property
    def hex(self) -> str:
        """``#RRGGBB``."""
        return rgb_hex(self.rgb)


def rgb_hex(rgb: RGB) -> str:
    """(r, g, b) to ``#RRGGBB``."""
    return "#{:02X}{:02X}{:02X}".format(*rgb)


_HEX_RE = re.compile(r"^#?([0-9a-fA-F]{6})$")


def parse_rgb(value: Any) -> RGB:
    """Parse ``"#RRGGBB"``, ``"RRGGBB"`` or ``[r, g, b]`` into an RGB tuple.

    Raises:
        ValueError: when the value is none of those.
    """
    if isinstance(value, str):
        m = _HEX_RE.match(value.strip())
        if m:
            h = m.group(1)
            return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    elif isinstance(value, (list, tuple)) and len(value) == 3:
        if all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value):
            return int(value[0]), int(value[1]), int(value[2])
    raise ValueError(f'not a colour: {value!r} (use "#RRGGBB" or [r, g, b])')


def _nearest(rgb: RGB, options: Mapping[str, RGB]) -> str:
    return min(options, key=lambda name: sum((a - b) ** 2 for a, b in zip(rgb, options[name], strict=True)))


def from_rgb(rgb: RGB) -> EmotionColor:
    """Host colours for an arbitrary RGB: the nearest of each host's set."""
    premiere_names = dict(PREMIERE_COLORS)
    premiere_name = _nearest(rgb, premiere_names)
    return EmotionColor(
        rgb=rgb,
        resolve=_nearest(rgb, RESOLVE_COLORS),
        avid=_nearest(rgb, AVID_COLORS),
        premiere=[n for n, _ in PREMIERE_COLORS].index(premiere_name),
        otio=_nearest(rgb, OTIO_COLORS),
    )


_DEFAULTS: dict[str, EmotionColor] = {
    "anger": EmotionColor((229, 57, 53), "Red", "red", 1, "RED"),
    "disgust": EmotionColor((67, 160, 71), "Green", "green", 0, "GREEN"),
    "fear": EmotionColor((142, 68, 173), "Purple", "magenta", 2, "PURPLE"),
    "joy": EmotionColor((253, 216, 53), "Yellow", "yellow", 4, "YELLOW"),
    "sadness": EmotionColor((30, 136, 229), "Blue", "blue", 6, "BLUE"),
    "surprise": EmotionColor((0, 188, 212), "Cyan", "cyan", 7, "CYAN"),
    "neutral": EmotionColor((189, 189, 189), "Sand", "white", 5, "WHITE"),
}
_MISMATCH = EmotionColor((255, 112, 67), "Pink", "magenta", 3, "ORANGE")


@dataclass(frozen=True, slots=True)
class Palette:
    """Emotion -> :class:`EmotionColor`, plus the colour used to flag voice/words mismatches.

    Attributes:
        colors: one entry per label of :data:`~emotag.timeline.LABELS`.
        mismatch: the colour of a mismatch (sarcasm candidate) when an exporter highlights it.
    """

    colors: Mapping[str, EmotionColor] = field(default_factory=lambda: MappingProxyType(dict(_DEFAULTS)))
    mismatch: EmotionColor = _MISMATCH

    def __getitem__(self, label: str) -> EmotionColor:
        return self.colors.get(label, self.colors.get("neutral", _DEFAULTS["neutral"]))


#: The palette used when none is given.
DEFAULT_PALETTE = Palette()


def palette_from_mapping(data: Mapping[str, Any], origin: str = "palette") -> Palette:
    """Build a palette from ``{label: "#RRGGBB" | {"rgb": ..., "resolve": ..., ...}}`` over the defaults.

    Unknown labels other than ``"mismatch"`` are refused so typos do not pass silently.

    Raises:
        ValueError: on an unknown label, a bad colour or a host colour name that host does not have.
    """
    colors = dict(_DEFAULTS)
    mismatch = _MISMATCH
    for label, spec in data.items():
        if label not in LABELS and label != "mismatch":
            raise ValueError(f"{origin}: unknown emotion {label!r} (labels: {', '.join(LABELS)}, mismatch)")
        base = colors[label] if label in colors else _MISMATCH
        if isinstance(spec, Mapping):
            rgb = parse_rgb(spec["rgb"]) if "rgb" in spec else base.rgb
            color = from_rgb(rgb) if "rgb" in spec else base
            resolve = spec.get("resolve", color.resolve)
            avid = spec.get("avid", color.avid)
            otio = spec.get("otio", color.otio)
            premiere = spec.get("premiere", color.premiere)
            if resolve not in RESOLVE_COLORS:
                raise ValueError(f"{origin}: {label}: Resolve has no colour {resolve!r}")
            if avid not in AVID_COLORS:
                raise ValueError(f"{origin}: {label}: Avid has no colour {avid!r}")
            if otio not in OTIO_COLORS:
                raise ValueError(f"{origin}: {label}: OTIO has no MarkerColor {otio!r}")
            if not isinstance(premiere, int) or not 0 <= premiere < len(PREMIERE_COLORS):
                raise ValueError(f"{origin}: {label}: Premiere colour index must be 0-7, got {premiere!r}")
            color = EmotionColor(rgb, resolve, avid, premiere, otio)
        else:
            color = from_rgb(parse_rgb(spec))
        if label == "mismatch":
            mismatch = color
        else:
            colors[label] = color
    return Palette(MappingProxyType(colors), mismatch)


def load_palette(path: str | os.PathLike[str]) -> Palette:
    """Read a JSON palette file (see the module docstring).

    Raises:
        InputError: missing/unreadable file, invalid JSON, or invalid content.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(str(p), "no such palette file", 'write {"joy": "#FFD700", ...} as JSON') from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(str(p), f"cannot be read ({e})") from None
    except json.JSONDecodeError as e:
        raise InputError(str(p), f"not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, Mapping):
        raise InputError(str(p), "must be a JSON object mapping emotions to colours")
    try:
        return palette_from_mapping(data, str(p))
    except (ValueError, KeyError) as e:
        raise InputError(str(p), str(e).removeprefix(f"{p}: ")) from None
