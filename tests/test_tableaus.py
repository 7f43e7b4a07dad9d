"""Every tableau against the Runge-Kutta order conditions (Butcher's rooted trees)."""

import itertools

import numpy as np
import pytest

from tinynode import tableaus

TABLEAUS = [tableaus.Tsit5(), tableaus.Dopri5(), tableaus.RK4(), tableaus.Euler()]


def rooted_trees(order):
    """All rooted trees with `order` nodes, each as a sorted tuple of its subtrees."""
    if order == 1:
        return [()]
    trees = set()
    # the root's children form a multiset of trees whose sizes sum to order - 1
    for sizes in _partitions(order - 1):
        for combo in itertools.product(*[rooted_trees(k) for k in sizes]):
            trees.add(tuple(sorted(combo)))
    return sorted(trees)


def _partitions(n, largest=None):
    largest = n if largest is None else largest
    if n == 0:
        yield ()
        return
    for k in range(min(n, largest), 0, -1):
        for rest in _partitions(n - k, k):
            yield (k,) + rest


def size(tree):
    return 1 + sum(size(t) for t in tree)


def gamma(tree):
    """The density gamma(t): the exact solution's coefficient is 1/gamma."""
    return size(tree) * int(np.prod([gamma(t) for t in tree])) if tree else 1


def stage_weights(tree, a):
    """Phi_i(t): ones for a leaf, else the product over subtrees of (A Phi(subtree))."""
    out = np.ones(a.shape[0])
    for sub in tree:
        out = out * (a @ stage_weights(sub, a))
    return out


def test_tree_counts_are_right():
    assert [len(rooted_trees(k)) for k in range(1, 6)] == [1, 1, 2, 4, 9]


def satisfied_order(weights, a, max_order=6, tol=1e-13):
    order = 0
    for k in range(1, max_order + 1):
        if all(abs(weights @ stage_weights(t, a) - 1 / gamma(t)) < tol for t in rooted_trees(k)):
            order = k
        else:
            break
    return order


@pytest.mark.parametrize("tab", TABLEAUS, ids=lambda t: t.name)
def test_rows_sum_to_c(tab):
    np.testing.assert_allclose(tab.a.sum(axis=1), tab.c, atol=1e-15)


@pytest.mark.parametrize("tab", TABLEAUS, ids=lambda t: t.name)
def test_b_has_the_claimed_order_and_no_more(tab):
    assert satisfied_order(tab.b, tab.a) == tab.order


@pytest.mark.parametrize("tab", [tableaus.Tsit5(), tableaus.Dopri5()], ids=lambda t: t.name)
def test_embedded_weights_have_order_4(tab):
    bhat = tab.b + tab.btilde
    assert satisfied_order(bhat, tab.a) == tab.error_order == 4


@pytest.mark.parametrize("tab", TABLEAUS, ids=lambda t: t.name)
@pytest.mark.parametrize("theta", [0.1, 0.37, 0.5, 0.8, 1.0])
def test_interpolant_quadrature_conditions(tab, theta):
    # sum_i b_i(theta) c_i^(k-1) = theta^k / k holds for k = 1..p* (the interpolant's order) and fails for p*+1
    w = tab.interp_weights(theta)
    for k in range(1, tab.interp_order + 1):
        assert w @ tab.c ** (k - 1) == pytest.approx(theta**k / k, abs=1e-13)
    if theta < 1 and tab.interp_order < tab.order:
        k = tab.interp_order + 1
        assert abs(w @ tab.c ** (k - 1) - theta**k / k) > 1e-6


def test_tsit5_interpolant_is_c1():
    # b_i'(0) = delta_i1 and b_i'(1) = delta_i7: the dense output's slope is k_1 and k_7 at the ends
    tab = tableaus.Tsit5()
    deriv = tab.interp * np.arange(1, tab.interp.shape[1] + 1)
    np.testing.assert_allclose(deriv[:, 0], np.eye(7)[0], atol=1e-14)
    np.testing.assert_allclose(deriv.sum(axis=1), np.eye(7)[6], atol=1e-12)


def test_tsit5_constants_are_ordinarydiffeq_s():
    tab = tableaus.Tsit5()
    assert tab.c[4] == 0.9800255409045097
    assert tab.a[6, 4] == -3.290069515436081
    assert tab.btilde[6] == 0.015151515151515152 == 1 / 66
    assert tab.fsal and tab.adaptive and tab.stages == 7


def test_a_broken_tableau_is_refused():
    with pytest.raises(ValueError, match="rows of a must sum to c"):
        tableaus.Tableau(
            "bad",
            np.array([0.0, 0.6]),
            np.array([[0, 0], [0.5, 0]]),
            np.array([0.5, 0.5]),
            interp=np.array([[0.5], [0.5]]),
        )


def test_tableau_arrays_are_read_only():
    import tinynode

    tab = tinynode.Tsit5()
    for name in ("c", "a", "b", "btilde", "interp"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(tab, name)[0] = 1.0
