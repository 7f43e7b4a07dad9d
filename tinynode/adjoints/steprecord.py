"""What the forward pass keeps for the discrete adjoint's reverse sweep, within a memory budget.

The reverse sweep of an accepted step needs, for each stage ``i``, the stage
input ``Y_i`` and a VJP there. Three things can be kept per step, from most
memory and least work to least memory and most work:

=============  ==========================================  ===========================================
kept           memory per step                              backward work per stage VJP
=============  ==========================================  ===========================================
activations    ``[y_n, k_1..k_s]`` and each stage's hidden  the layers' backward only (~2 evaluations)
               activations (what the field's VJP reuses)
stages         ``[y_n, k_1..k_s]``                          a forward pass, then the backward (~3)
start state    ``y_n``                                      the step is re-taken first (+ s evaluations)
=============  ==========================================  ===========================================

Every accepted step is kept whole; whenever the record outgrows the budget,
the oldest steps give up their activations, and then their stages, until it
fits again (:meth:`StepRecord.fit`). So a long solve ends with its recent
steps whole and its early ones re-taken, and memory stays within the budget
(plus one step, between a step's arrival and the fit). Re-taking a step from
``y_n`` with its recorded ``h`` repeats the same arithmetic, so the gradient
does not depend on what was kept.

The hidden activations come from the field itself: a bound field that can
reuse them offers ``into_keeping`` and ``vjp_kept`` (:mod:`tinynode.protocol`;
the MLP fast path does). Which stage an evaluation belongs to follows from the
step's structure: ``prepare`` opens an attempt whose evaluations are stages
``2..s`` in order; an accepted step's first stage is either the previous
step's last one (FSAL) or an evaluation made at ``t_n`` outside any attempt
(the first step, a non-FSAL method, a re-evaluation after a jump).
"""

from ..errors import MemoryBudgetExceeded
from ..protocol import BoundField


def _nbytes(kept):
    return 0 if kept is None else sum(a.nbytes for a in kept)


class StepRecord(BoundField):
    """The forward field for a discrete-adjoint solve, and the record of its accepted steps.

    Solve with ``field=record`` and ``on_step=record.on_step``; afterwards
    ``ts``, ``hs``, ``tables`` (each ``[y_n, k_1..k_s]`` or ``y_n`` alone) and
    ``kept`` (each step's per-stage activations, or None) describe every step.
    """

    def __init__(self, bound, budget):
        self.bound, self.budget = bound, budget
        self.keeping = type(bound).into_keeping is not BoundField.into_keeping
        self.ts, self.hs, self.tables, self.kept = [], [], [], []
        self.used = 0  # bytes kept so far
        self.shrunk = {"activations": 0, "stages": 0}  # how many of the oldest steps have given each up
        self.attempt, self.loose, self.last = None, {}, None

    # -- the forward field ----------------------------------------------------------------

    @property
    def largest_product(self):
        """The recorded field's (it chooses the BLAS threads)."""
        return self.bound.largest_product

    def prepare(self, times):
        """A step attempt begins: its evaluations are stages 2..s, in order."""
        self.attempt = []
        self.bound.prepare(times)

    def into(self, t, y, out):
        """``out[...] = f(t, y)``, keeping what the VJP at this point will reuse (if the field offers it)."""
        if not self.keeping:
            return self.bound.into(t, y, out)
        kept = self.bound.into_keeping(t, y, out)
        if self.attempt is None:
            self.loose[t] = kept
        else:
            self.attempt.append(kept)
        return out

    # -- the record -----------------------------------------------------------------------

    def on_step(self, t, t_new, h, B, y_new):
        """Keep an accepted step whole, then make the record fit the budget (:meth:`fit`)."""
        first = self.loose.get(t, self.last)
        kept = [first, *self.attempt] if self.keeping and first is not None else None
        self.last = self.attempt[-1] if self.keeping and self.attempt else first
        self.attempt, self.loose = None, {}
        self.ts.append(t)
        self.hs.append(h)
        self.tables.append(B.copy())
        self.kept.append(kept)
        self.used += B.nbytes + (0 if kept is None else sum(map(_nbytes, kept)))
        self.fit()

    def fit(self):
        """Keep less of the steps, oldest first, until the record fits: activations go first, then stages.

        Once activations had to go, later steps no longer keep them at all.
        Each step counts its stage-1 activations even when the previous step
        holds the same arrays (FSAL): an overcount that keeps the accounting
        simple and the budget respected."""
        while self.used > self.budget and self.shrunk["activations"] < len(self.kept):
            j = self.shrunk["activations"]
            if self.kept[j] is not None:
                self.used -= sum(map(_nbytes, self.kept[j]))
                self.kept[j] = None
            self.shrunk["activations"] += 1
            self.keeping = False  # they do not fit: later steps evaluate without keeping any
        while self.used > self.budget and self.shrunk["stages"] < len(self.tables):
            j = self.shrunk["stages"]
            table = self.tables[j]
            self.tables[j] = table[0].copy()  # y_n: the step is re-taken before its reverse sweep
            self.used -= table.nbytes - table[0].nbytes
            self.shrunk["stages"] += 1
        if self.used > self.budget:
            raise MemoryBudgetExceeded(
                f"the forward pass of DiscreteAdjoint needs more than memory={self.budget} bytes after "
                f"{len(self.ts)} steps even keeping only each step's start state ({self.used / 2**20:.1f} MiB); "
                "raise DiscreteAdjoint(memory=...), or use BacksolveAdjoint(), which keeps nothing per step"
            )

    def counts(self):
        """How many steps kept activations, stages, and only their start state."""
        full = sum(k is not None for k in self.kept)
        starts = sum(table.ndim == 1 for table in self.tables)
        return {"activations": full, "stages": len(self.tables) - full - starts, "start_states": starts}
