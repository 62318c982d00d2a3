"""An independent oracle: the published algorithms in plain NumPy, from algorithms.md alone.

Nothing here comes from the engine's code but what a run is keyed by: the keyed uniforms
(:mod:`asyncneurons.learning.streams`) and the initial weights (read from the engine's own objects before
they run). The tasks are the environments both run: gymnasium's, and the project's multiplexer
and regression, registered under gymnasium (a test checks the multiplexer's rewards against
algorithms.md §5.1). Units, sampling, scores, eligibility traces, Weight Maximization's retrograde
reward, the backprop and straight-through errors, MAP relaxation and its gate, the TD(λ) critic,
Adam with its bias correction and the learning-rate schedules are written again here, in the
published row-vector convention (``pot = h W + b``, W of shape (inputs, units), separate W and b
with their own Adam state), so a mistake the engine shares with its own reference cannot pass.
"""

from .algorithms import Oracle, engine_initial_state
from .supervised import SupervisedOracle

__all__ = ["Oracle", "SupervisedOracle", "engine_initial_state"]
