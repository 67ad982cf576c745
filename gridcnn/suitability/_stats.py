"""The locality stage of the suitability check: neighbour dependence along one axis, against two permutation nulls.

Everything here works on an axis's *similarity matrix* ``S`` (L x L): the mean absolute correlation, over
samples, between the cells at positions i and j of that axis (averaged over the other axes). ``S`` does not depend
on the order of the positions, so a permutation of the axis is just a re-indexing of ``S``, and thousands of them
cost less than computing ``S`` once.

Two nulls, both permutation tests on the statistic T = mean S[i, i+1] (dependence between neighbours):

* *random order*: every order of the axis is equally likely (a table whose columns were written down in an
  arbitrary order). Exact: the p-value is uniform when the order is random, whatever the correlations are.
* *grouped order*: the columns come in contiguous groups of related measurements (all the blood tests, then all
  the income fields) with no order inside a group or among the groups. Such a table also has neighbours that are
  more alike than random pairs, yet it is no grid. The groups are found by merging adjacent positions
  (contiguity-constrained average linkage); the null shuffles inside each group and shuffles the groups. As the
  number of groups is unknown, every plausible number is tried and the least favourable one is kept: the axis
  counts as ordered only when no grouping explains its neighbour dependence.

A grid passes both: its neighbours are more alike than any grouping can arrange, because its dependence decays
with distance inside every stretch and continues across every boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Slices of the other axes averaged into one similarity matrix: beyond a few dozen the estimate stops changing.
MAX_SLICES = 64
# Screening permutations per candidate grouping; only the least favourable groupings get the full count.
_SCREEN_PERMUTATIONS = 49
_FULL_LEVELS = 3


def axis_similarity(grids: np.ndarray, axis: int, rng: np.random.Generator) -> np.ndarray:
    """Mean |Pearson correlation| between positions of ``axis`` of (n, C, H, W) ``grids``, over the other axes.

    Returns an (L, L) float64 matrix with a zero diagonal; constant cells count as uncorrelated.
    """
    moved = np.moveaxis(grids, axis, -1)
    n, length = moved.shape[0], moved.shape[-1]
    moved = moved.reshape(n, -1, length)
    n_slices = moved.shape[1]
    chosen = np.arange(n_slices) if n_slices <= MAX_SLICES else np.sort(rng.choice(n_slices, MAX_SLICES, replace=False))
    total = np.zeros((length, length))
    for start in range(0, len(chosen), 8):
        z = moved[:, chosen[start:start + 8], :].astype(np.float64)
        z -= z.mean(axis=0)
        sd = z.std(axis=0)
        z /= np.where(sd > 0, sd, np.inf)
        # One correlation matrix per slice, made absolute before averaging: signs may differ between slices.
        total += np.abs(np.einsum("nsi,nsj->sij", z, z, optimize=True)).sum(axis=0)
    similarity = total / (n * len(chosen))
    np.fill_diagonal(similarity, 0.0)
    return similarity


def neighbour_stat(similarity: np.ndarray, orders: np.ndarray, distance: int = 1) -> np.ndarray:
    """Mean similarity at ``distance`` along each order in ``orders`` (B, L)."""
    return similarity[orders[:, :-distance], orders[:, distance:]].mean(axis=1)


def random_orders(rng: np.random.Generator, n_orders: int, length: int) -> np.ndarray:
    """``n_orders`` uniformly random permutations of ``range(length)``, as a (B, L) array."""
    return np.argsort(rng.random((n_orders, length)), axis=1)


def grouped_orders(rng: np.random.Generator, n_orders: int, groups: np.ndarray) -> np.ndarray:
    """Random orders that keep each contiguous group together: groups shuffled, then positions within groups."""
    n_groups = int(groups.max()) + 1
    group_rank = np.argsort(rng.random((n_orders, n_groups)), axis=1).argsort(axis=1)
    # A group's rank is an integer and the within-group key lies in [0, 1), so sorting keeps groups contiguous.
    return np.argsort(group_rank[:, groups] + rng.random((n_orders, len(groups))), axis=1)


def p_value(observed: float, null: np.ndarray) -> float:
    """One-sided Monte Carlo p-value (1 + #{null >= observed}) / (1 + B), ties counted against the data."""
    tolerance = 1e-12 * max(1.0, abs(observed))
    return float((1 + np.count_nonzero(null >= observed - tolerance)) / (1 + len(null)))


def z_score(observed: float, null: np.ndarray) -> float:
    """Distance of ``observed`` from the null mean in null standard deviations (0 when the null does not vary)."""
    sd = null.std()
    return float((observed - null.mean()) / sd) if sd > 1e-12 else 0.0


def contiguous_groupings(similarity: np.ndarray, levels) -> dict[int, np.ndarray]:
    """Group labels per position for each number of groups in ``levels``, by merging adjacent groups.

    Starting from one group per position, repeatedly merge the two adjacent groups with the highest mean
    similarity between them (average linkage restricted to neighbours) and record the labels whenever the number
    of groups is one of ``levels``.
    """
    length = len(similarity)
    prefix = np.zeros((length + 1, length + 1))
    prefix[1:, 1:] = similarity.cumsum(axis=0).cumsum(axis=1)

    def link(a0, a1, b1):
        # Mean similarity between [a0, a1) and [a1, b1), from the 2-D prefix sums.
        block = prefix[a1, b1] - prefix[a0, b1] - prefix[a1, a1] + prefix[a0, a1]
        return block / ((a1 - a0) * (b1 - a1))

    starts = list(range(length + 1))  # group g spans [starts[g], starts[g + 1])
    links = [link(i, i + 1, i + 2) for i in range(length - 1)]
    wanted, found = set(levels), {}
    while len(starts) - 1 > 1:
        g = int(np.argmax(links))
        del starts[g + 1]
        del links[g]
        if g > 0:
            links[g - 1] = link(starts[g - 1], starts[g], starts[g + 1])
        if g < len(links):
            links[g] = link(starts[g], starts[g + 1], starts[g + 2])
        if len(starts) - 1 in wanted:
            found[len(starts) - 1] = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    return found


def grouping_levels(length: int) -> list[int]:
    """Numbers of groups to try: every count up to 64, then steps of 10% up to one group per two positions."""
    top = length // 2
    levels = list(range(2, min(top, 64) + 1))
    k = 64
    while k < top:
        k = min(top, int(np.ceil(k * 1.1)))
        levels.append(k)
    return sorted(set(levels))


@dataclass
class LocalityResult:
    """Numbers the report shows for one axis (see `SuitabilityReport`)."""

    statistic: float
    null_mean: float
    z: float
    p_value: float
    grouped_null_mean: float
    grouped_z: float
    grouped_p_value: float
    n_groups: int
    group_sizes: tuple[int, int]
    # The arrays stay out of repr: a report prints its numbers, not its curves.
    groups: np.ndarray | None = field(repr=False)  # group label per position in the least favourable grouping
    distances: np.ndarray = field(repr=False)
    dependence: np.ndarray = field(repr=False)
    null_profile: np.ndarray = field(repr=False)  # (3, D): 5th percentile, mean, 95th percentile of the shuffled data
    grouped_profile: np.ndarray = field(repr=False)  # (D,): mean dependence with the groups shuffled (NaN if none)


def locality_test(similarity: np.ndarray, rng: np.random.Generator, n_permutations: int,
                  max_distance: int = 16) -> LocalityResult:
    """Test neighbour dependence along one axis against random and grouped orders (see the module docstring)."""
    length = len(similarity)
    observed = float(np.diag(similarity, 1).mean())
    orders = random_orders(rng, n_permutations, length)
    null = neighbour_stat(similarity, orders)

    distances = np.arange(1, min(length - 1, max_distance) + 1)
    dependence = np.array([np.diag(similarity, d).mean() for d in distances])
    profile_orders = orders[: min(n_permutations, 199)]
    profile = np.array([neighbour_stat(similarity, profile_orders, d) for d in distances]).T  # (B, D)
    null_profile = np.stack([np.percentile(profile, 5, axis=0), profile.mean(axis=0),
                             np.percentile(profile, 95, axis=0)])

    # Least favourable grouping: screen every level cheaply by z, then test the few lowest with the full count.
    groupings = contiguous_groupings(similarity, grouping_levels(length))
    worst = (np.nan, np.nan, 1.0, 1, (length, length), None)
    if groupings:
        screened = []
        for k, groups in groupings.items():
            screen = neighbour_stat(similarity, grouped_orders(rng, _SCREEN_PERMUTATIONS, groups))
            screened.append((z_score(observed, screen), k))
        worst = None
        for _, k in sorted(screened)[:_FULL_LEVELS]:
            groups = groupings[k]
            grouped = neighbour_stat(similarity, grouped_orders(rng, n_permutations, groups))
            candidate = (float(grouped.mean()), z_score(observed, grouped), p_value(observed, grouped), k,
                         (int(np.bincount(groups).min()), int(np.bincount(groups).max())), groups)
            if worst is None or candidate[2] > worst[2] or (candidate[2] == worst[2] and candidate[1] < worst[1]):
                worst = candidate
    grouped_profile = np.full(len(distances), np.nan)
    if worst[5] is not None:
        grouped_sample = grouped_orders(rng, min(n_permutations, 199), worst[5])
        grouped_profile = np.array([neighbour_stat(similarity, grouped_sample, d).mean() for d in distances])
    return LocalityResult(
        statistic=observed,
        null_mean=float(null.mean()),
        z=z_score(observed, null),
        p_value=p_value(observed, null),
        grouped_null_mean=worst[0],
        grouped_z=worst[1],
        grouped_p_value=worst[2],
        n_groups=worst[3],
        group_sizes=worst[4],
        groups=worst[5],
        distances=distances,
        dependence=dependence,
        null_profile=null_profile,
        grouped_profile=grouped_profile,
    )
