"""The catalogue: one entry per metric, consistent with how the engine and quotas read it."""

from __future__ import annotations

from app.metrics.catalogue import (
    METRICS,
    Combine,
    Forecast,
    Level,
    Metric,
    Moment,
    Source,
)


def test_every_metric_has_one_entry() -> None:
    assert set(METRICS) == set(Metric)
    assert len(Metric) == 14


def test_sources_and_moments_agree() -> None:
    for metric, d in METRICS.items():
        if d.source is Source.deals:
            assert d.moment in (Moment.created_at, Moment.closed_at), metric
            assert d.activity_type is None
        else:
            assert d.moment is Moment.occurred_at, metric
            assert d.statuses is None
        assert (d.activity_type is not None) == (d.source is Source.activities), metric
    counted = [d.activity_type for d in METRICS.values() if d.activity_type]
    assert len(counted) == len(set(counted)) == 6


def test_ratios_and_means_are_steady_and_never_added() -> None:
    for metric, d in METRICS.items():
        assert (d.forecast is Forecast.steady) == d.pooled, metric
        assert d.additive == (d.combine in (Combine.count, Combine.sum)), metric
    assert not METRICS[Metric.contacts_engaged].additive  # distinct: members overlap
    pooled = {m for m, d in METRICS.items() if d.pooled}
    assert pooled == {Metric.win_rate, Metric.avg_deal_value, Metric.sales_cycle_days}


def test_levels_pipeline_and_direction() -> None:
    by_level = {lvl: {m for m, d in METRICS.items() if d.level is lvl} for lvl in Level}
    assert by_level[Level.output] == {Metric.deals_won, Metric.revenue, Metric.gross_margin}
    assert by_level[Level.middle] == {
        Metric.opportunities_created,
        Metric.win_rate,
        Metric.avg_deal_value,
        Metric.sales_cycle_days,
    }
    pipeline = {m for m, d in METRICS.items() if d.forecast is Forecast.pipeline}
    assert pipeline == by_level[Level.output]
    assert [m for m, d in METRICS.items() if d.lower_is_better] == [Metric.sales_cycle_days]
