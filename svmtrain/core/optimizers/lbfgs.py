"""Full-batch L-BFGS (Nocedal & Wright, Numerical Optimization, 2nd ed., algorithms 7.4, 3.5
and 3.6): each round is one iteration, a step along the two-loop direction chosen by a line
search satisfying the strong Wolfe conditions, on the loss and gradient of the whole training
split (:meth:`~svmtrain.core.objective.Objective.full`, chunk by chunk).

The iterate and every sum are float64 whatever W's dtype (W is the iterate rounded): near the
minimum the decrease a line search must see is below float32's resolution of the loss. The
state (iterate, gradient, loss, the last ``lbfgs.history`` pairs (s, y)) is all arrays, so a
resumed run continues bit-identically.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from svmtrain.core.losses import reg_loss
from svmtrain.core.objective import Objective
from svmtrain.core.optimizers.base import Optimizer, Progress, State
from svmtrain.errors import DivergenceError

C1, C2 = 1e-4, 0.9  # the strong Wolfe conditions' sufficient decrease and curvature factors

Point = tuple[float, float, float, np.ndarray | None]  # (t, loss, slope, gradient) on the line


def _cubic_step(a: Point, b: Point, low: float, high: float) -> float:
    """The minimiser of the cubic through a and b (values and slopes), clipped into the middle
    80% of [low, high]; their midpoint when the cubic has none there."""
    (ta, fa, ga, _), (tb, fb, gb, _) = a, b
    d1 = ga + gb - 3 * (fa - fb) / (ta - tb)
    root = d1 * d1 - ga * gb
    if not (math.isfinite(root) and root >= 0):
        return (low + high) / 2
    d2 = math.copysign(math.sqrt(root), tb - ta)
    denominator = gb - ga + 2 * d2
    t = tb - (tb - ta) * (gb + d2 - d1) / denominator if denominator else (low + high) / 2
    margin = 0.1 * (high - low)
    return min(max(t, low + margin), high - margin)


def strong_wolfe(
    phi: Callable[[float], Point], f0: float, slope0: float, t: float, max_evaluations: int
) -> tuple[Point | None, int]:
    """A step t > 0 along a descent direction with phi(t) = (t, loss, slope, gradient) that
    satisfies loss <= f0 + C1 t slope0 and |slope| <= -C2 slope0; or, when ``max_evaluations``
    run out first, the lowest point of sufficient decrease found (None if there is none).
    A non-finite loss counts as too far. Returns (point, evaluations)."""
    lo: Point = (0.0, f0, slope0, None)
    hi: Point | None = None
    for evaluations in range(1, max_evaluations + 1):
        point = phi(t)
        _, f, slope, _ = point
        if not (math.isfinite(f) and math.isfinite(slope)):
            hi = (t, math.inf, math.nan, None)
        elif f > f0 + C1 * t * slope0 or (f >= lo[1] and lo[0] > 0):
            hi = point
        elif abs(slope) <= -C2 * slope0:
            return point, evaluations
        elif hi is None and slope < 0:  # still going down: extrapolate
            lo, t = point, _cubic_step(lo, point, 2 * t, 10 * t) if lo[0] > 0 else 4 * t
            continue
        else:
            if hi is None or slope * (hi[0] - lo[0]) >= 0:
                hi = lo
            lo = point
        low, high = sorted((lo[0], hi[0]))
        if high - low <= 1e-12 * high:
            break
        t = _cubic_step(lo, hi, low, high) if math.isfinite(hi[1]) else (low + high) / 2
    return (lo if lo[0] > 0 else None), evaluations


def _direction(g: np.ndarray, state: State, m: int) -> np.ndarray:
    """-H g by the two-loop recursion over the stored pairs (newest first), H0 = gamma I."""
    S, Y, rho, count = state["S"], state["Y"], state["rho"], int(state["pairs"])
    newest_first = [(count - 1 - i) % m for i in range(min(count, m))]
    q, alphas = -g, []
    for j in newest_first:
        alphas.append(rho[j] * np.vdot(S[j], q))
        q = q - alphas[-1] * Y[j]
    if newest_first:
        j = newest_first[0]
        q = q * (np.vdot(S[j], Y[j]) / np.vdot(Y[j], Y[j]))
    for j, alpha in zip(reversed(newest_first), reversed(alphas), strict=True):
        q = q + (alpha - rho[j] * np.vdot(Y[j], q)) * S[j]
    return q


class LBFGS(Optimizer):
    name = "lbfgs"
    keys = ("lbfgs",)
    round_name = "iteration"
    order = 1

    def plan(self, n: int) -> tuple[int, int]:
        """``lbfgs.iterations`` rounds of one update each."""
        return self.cfg.lbfgs.iterations, self.cfg.lbfgs.iterations

    def init_state(self, W: np.ndarray) -> State:
        m, shape = self.cfg.lbfgs.history, W.shape
        return {
            "x": W.astype(np.float64),
            "g": np.zeros(shape),
            "f": np.array(np.nan),
            "S": np.zeros((m, *shape)),
            "Y": np.zeros((m, *shape)),
            "rho": np.zeros(m),
            "pairs": np.array(0, dtype=np.int64),
            "converged": np.array(False),
        }

    def finished(self, state: State) -> bool:
        return bool(state["converged"])

    def run_round(
        self,
        objective: Objective,
        W: np.ndarray,
        state: State,
        done: Progress,
        rng: np.random.Generator,
        hook: Callable[[], object],
    ) -> tuple[dict[str, float], np.ndarray]:
        """One iteration; fields loss, data_loss, reg_loss (at the new iterate), grad_norm
        (its L2 norm), step_length (t along the direction) and evaluations (of the loss)."""
        s, m = self.cfg.lbfgs, self.cfg.model
        x, g, evaluations = state["x"], state["g"], 0
        if np.isnan(state["f"]):
            f, G = objective.full(x)
            state["f"][...], evaluations = f, 1
            np.copyto(g, G)
            if not (math.isfinite(f) and np.all(np.isfinite(g))):
                raise DivergenceError(
                    f"The loss at the initial weights is {f:g}, so L-BFGS cannot start. "
                    "Try a smaller model.init_scale."
                )
        f0, d = float(state["f"]), _direction(g, state, s.history)
        slope = float(np.vdot(g, d))
        if not slope < 0:  # not a descent direction: forget the pairs, go down the gradient
            state["pairs"][...], d = 0, -g
            slope = float(np.vdot(g, d))
        t0 = 1.0 if int(state["pairs"]) else min(1.0, 1.0 / max(np.linalg.norm(g), 1e-300))

        def phi(t: float) -> Point:
            loss, G = objective.full(x + t * d)
            return t, loss, float(np.vdot(G, d)), G

        point, used = (
            (None, 0) if slope >= 0 else strong_wolfe(phi, f0, slope, t0, s.max_evaluations)
        )
        evaluations += used
        if point is None:  # no decrease along the direction: as converged as it gets
            state["converged"][...] = True
            t, f = 0.0, f0
        else:
            t, f, _, G = point
            step, change = t * d, G - g
            curvature = float(np.vdot(step, change))
            if curvature > 1e-10 * float(np.vdot(change, change)):
                j = int(state["pairs"]) % s.history
                state["S"][j], state["Y"][j], state["rho"][j] = step, change, 1.0 / curvature
                state["pairs"][...] += 1
            x += step
            np.copyto(g, G)
            state["f"][...] = f
            small = f0 - f <= s.loss_tol * max(abs(f0), abs(f), 1.0)
            state["converged"][...] = small or np.abs(g).max() <= s.grad_tol
        np.copyto(W, x, casting="same_kind")
        hook()
        reg = reg_loss(x, m.reg, m.reg_bias)
        fields = {
            "loss": float(f),
            "data_loss": float(f) - reg,
            "reg_loss": reg,
            "grad_norm": float(np.linalg.norm(g)),
            "step_length": float(t),
            "evaluations": evaluations,
        }
        return fields, np.array([f])
