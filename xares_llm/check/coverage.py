"""Coverage: does every part of a clip reach the valid frames, at the same relative position?

A feature mask or frame count computed wrongly (a stride formula applied twice) keeps a prefix of
the frames. Every shape check still passes and the frame rate looks plausible (25 Hz for Whisper's
50), but extraction then stores only the first half of each clip. Here short tone bursts at several
positions of a quiet 30 s clip must each change the valid frames most near the same relative
position, and the clip's last quarter must reach some valid frame.
"""

from __future__ import annotations

import statistics

import numpy as np

from xares_llm.check.context import LONG_CLIP_SECONDS, Context
from xares_llm.constants import SAMPLE_RATE
from xares_llm.encoders.encoding import encode_clips

BURST_POSITIONS = (0.1, 0.3, 0.5, 0.7, 0.9)  # burst centres, as fractions of the clip
BURST_SECONDS = 0.1
BURST_HZ = 1000.0
BURST_GAIN = 0.2
# Low noise rather than silence: front ends whose log floor follows the clip's peak (Whisper's
# max - 8) would shift every silent frame when a burst raises the peak.
BACKGROUND_GAIN = 0.02
POSITION_TOL = 0.05  # allowed |frame position - burst position|, as a fraction of the valid frames, plus one frame
# A burst whose largest change is below this fraction of the strongest burst's reaches no valid frame
# (what is left is rounding, or attention leaking in from frames that were dropped).
REACH_RTOL = 1e-3
LAST_QUARTER = 0.75
FIX = (
    "count each clip's valid frames once, from audio_attention_mask, for the whole clip "
    "(a stride formula applied twice keeps only the first half)"
)


def with_burst(background: np.ndarray, position: float) -> np.ndarray:
    """`background` with a BURST_SECONDS tone centred at `position` (a fraction of its length)."""
    n = round(BURST_SECONDS * SAMPLE_RATE)
    start = min(max(0, round(position * len(background) - n / 2)), len(background) - n)
    clip = background.copy()
    tone = BURST_GAIN * np.sin(2 * np.pi * BURST_HZ * np.arange(n) / SAMPLE_RATE)
    clip[start : start + n] += tone.astype(np.float32)
    return clip


def check_coverage(ctx: Context) -> tuple[bool, str]:
    ctx.require("30 s clip")
    background = ctx.noise(LONG_CLIP_SECONDS, BACKGROUND_GAIN)
    try:
        base = encode_clips(ctx.encoder, [background], ctx.device)[0]
        peaks = []  # (burst position, relative position of the most changed valid frame, its change)
        for position in BURST_POSITIONS:
            frames = encode_clips(ctx.encoder, [with_burst(background, position)], ctx.device)[0]
            if frames.shape != base.shape:
                return False, (
                    f"a burst at {position:.0%} of a {LONG_CLIP_SECONDS:g} s clip changed the number of valid frames "
                    f"from {base.shape[0]} to {frames.shape[0]}; the count must depend only on the clip's length"
                )
            change = (frames - base).float().norm(dim=-1)
            index = int(change.argmax())
            peaks.append((position, (index + 0.5) / len(change), float(change[index])))
    except Exception as e:
        return False, f"encoding {LONG_CLIP_SECONDS:g} s clips with tone bursts raised {type(e).__name__}: {e}"
    strongest = max(change for *_, change in peaks)
    reached = [(p, q) for p, q, change in peaks if change > REACH_RTOL * strongest]
    # If the valid frames span the first `c` of the clip, a burst at p peaks at p / c of them.
    covered = f"valid frames cover ~{statistics.median(p / q for p, q in reached):.0%} of the clip" if reached else ""
    missed = [p for p, _, change in peaks if not change > REACH_RTOL * strongest]
    if missed:
        shown = ", ".join(f"{p:.0%}" for p in missed)
        late = " (the last quarter of the clip reaches none)" if max(missed) >= LAST_QUARTER else ""
        summary = f"; {covered}" if covered else ""
        return False, (
            f"tone bursts at {shown} of a {LONG_CLIP_SECONDS:g} s clip change no valid frame{late}{summary}; {FIX}"
        )
    tolerance = POSITION_TOL + 1 / len(base)
    for position, peak, _ in peaks:
        if abs(peak - position) > tolerance:
            return False, (
                f"a tone burst at {position:.0%} of a {LONG_CLIP_SECONDS:g} s clip changes the valid frames most "
                f"at {peak:.0%} of them (allowed ±{tolerance:.0%}); {covered}; {FIX}"
            )
    worst = max(abs(peak - position) for position, peak, _ in peaks)
    shown = "/".join(f"{p:.0%}".removesuffix("%") for p in BURST_POSITIONS)
    return True, (
        f"tone bursts at {shown}% of a {LONG_CLIP_SECONDS:g} s clip each peak at the same place in the valid "
        f"frames (within {worst:.1%}); {covered}"
    )
