from common.svg_chart import BarChartShape, bar_chart

SHAPE = BarChartShape(bar=10, gap=5, height=100, top=8, label=30)


def test_bars_scale_to_the_largest_value_and_stand_on_one_baseline():
    chart = bar_chart([0, 5, 10], shape=SHAPE)
    heights = [bar["height"] for bar in chart["bars"]]
    assert heights == [0, 50, 100]
    assert {bar["y"] + bar["height"] for bar in chart["bars"]} == {chart["baseline"]} == {108}
    assert [bar["x"] for bar in chart["bars"]] == [5, 20, 35]
    assert chart["width"] == 50
    assert chart["height"] == 138


def test_an_empty_or_all_zero_chart_draws_flat_bars():
    assert bar_chart([], shape=SHAPE)["bars"] == []
    assert [bar["height"] for bar in bar_chart([0, 0], shape=SHAPE)["bars"]] == [0, 0]
