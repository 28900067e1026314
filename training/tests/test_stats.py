"""training.stats against hand-computed cases: the Wilson interval of 30/100, 0/10 and 6/6, the bootstrap's
shuffle invariance and its collapse on an all-correct set, paired against unpaired on the same data, and
the minimum detectable effect of a paired check."""

import math
import random

import pytest

from training.stats import bootstrap_ci, minimum_detectable_effect, paired_bootstrap_ci, wilson_interval

Z95 = 1.959963984540054
Z80 = 0.8416212335729143


def test_the_wilson_interval_of_30_of_100_matches_the_textbook_value():
    low, high = wilson_interval(30, 100)
    assert (round(low, 4), round(high, 4)) == (0.2189, 0.3958)


def test_the_wilson_interval_is_exact_at_its_ends():
    # k = 0: [0, z²/(n+z²)]; k = n: [n/(n+z²), 1]
    assert wilson_interval(0, 10) == (0.0, pytest.approx(Z95**2 / (10 + Z95**2)))
    assert wilson_interval(6, 6) == (pytest.approx(6 / (6 + Z95**2)), 1.0)
    assert round(wilson_interval(6, 6)[0], 4) == 0.6097
    assert wilson_interval(0, 0) is None


def test_an_all_correct_set_bootstraps_to_a_point_but_not_under_wilson():
    assert bootstrap_ci([1.0] * 6) == (1.0, 1.0)
    low, high = wilson_interval(6, 6)
    assert high == 1.0 and low < 0.62


def test_the_bootstrap_is_the_same_whatever_the_item_order():
    values = [1.0] * 30 + [0.0] * 70
    shuffled = values[:]
    random.Random(7).shuffle(shuffled)
    assert shuffled != values
    assert bootstrap_ci(shuffled) == bootstrap_ci(values)
    low, high = bootstrap_ci(values)
    assert low < 0.3 < high and high - low == pytest.approx(0.18, abs=0.02)  # ≈ 2·1.96·√(.3·.7/100)


def test_the_bootstrap_is_seeded():
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    assert bootstrap_ci(values) == bootstrap_ci(values)
    assert bootstrap_ci([]) is None


def test_identical_predictions_have_a_paired_interval_of_exactly_zero():
    values = [1.0, 0.0] * 25
    assert paired_bootstrap_ci(values, values) == (0.0, 0.0)


def test_pairing_sees_an_improvement_that_two_separate_intervals_cannot():
    # The same 50 items; the candidate also gets 3 items right that the baseline got wrong.
    baseline = [1.0] * 25 + [0.0] * 25
    current = [1.0] * 28 + [0.0] * 22
    paired_low, paired_high = paired_bootstrap_ci(baseline, current)
    assert paired_low >= 0.0 and paired_high <= 0.16  # every per-item difference is 0 or +1
    # Unpaired (two independent samples), the Wald interval of the same difference spans zero.
    p1, p2, n = 0.5, 0.56, 50
    half = Z95 * math.sqrt(p1 * (1 - p1) / n + p2 * (1 - p2) / n)
    assert (p2 - p1) - half < 0 < (p2 - p1) + half
    assert paired_high - paired_low < half  # narrower than half the unpaired width


def test_paired_values_must_pair():
    with pytest.raises(ValueError):
        paired_bootstrap_ci([1.0, 0.0], [1.0])


def test_the_minimum_detectable_effect_of_a_known_case():
    # 10 of 100 items flip to correct: differences sd = √(9/99); MDE = (z.975 + z.8) · sd / √100.
    baseline = [0.0] * 100
    current = [1.0] * 10 + [0.0] * 90
    expected = (Z95 + Z80) * math.sqrt(9 / 99) / 10
    assert minimum_detectable_effect(baseline, current) == pytest.approx(expected)
    assert round(expected, 4) == 0.0845


def test_agreeing_evaluations_report_the_worst_case_effect_not_zero():
    values = [1.0, 0.0] * 50
    assert minimum_detectable_effect(values, values) == pytest.approx((Z95 + Z80) / 10)
    assert minimum_detectable_effect([1.0], [1.0]) is None


def test_more_items_detect_smaller_effects():
    small = minimum_detectable_effect([0.0] * 25, [1.0] * 5 + [0.0] * 20)
    large = minimum_detectable_effect([0.0] * 250, [1.0] * 50 + [0.0] * 200)
    assert large < small / 3
