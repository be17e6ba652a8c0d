"""`xares check`: does an encoder keep the contract (docs/encoders.md), and the promises we rely on?

The reference checker calls ``encoder(torch.randn(3, 50000), None)`` and looks at types and shapes
(`contract`). Extraction also trusts things it does not check, each of which silently corrupts a
store when broken: a feature mask as long as the features, a mask that really marks padding, finite
numbers, output that does not depend on the other clips in the batch (`padding`), and valid frames
that span the whole clip (`coverage`). We check those too, and measure the frame rate, time and peak
memory for one 30 s clip (`cost`).

Every check yields one `CheckResult` with a reason a user can act on. Checks whose inputs a failed
check could not provide (no tuple came back, so there is no mask to check) are reported as skipped,
naming what they need (`runner`).
"""

from xares_llm.check.context import CheckResult
from xares_llm.check.runner import all_mandatory_passed, check_encoder, run_checks

__all__ = ["CheckResult", "all_mandatory_passed", "check_encoder", "run_checks"]
