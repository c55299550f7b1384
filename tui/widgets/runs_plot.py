"""Baseline and tuned runs of the primary metric, plotted in the terminal (plotext)."""

from __future__ import annotations

from textual_plotext import PlotextPlot


class RunsPlot(PlotextPlot):
    DEFAULT_CSS = "RunsPlot { height: 14; }"

    def __init__(self, metric: str, unit: str, baseline: list[float], tuned: list[float], **kw):
        super().__init__(**kw)
        self.metric, self.unit, self.baseline, self.tuned = metric, unit, baseline, tuned

    def on_mount(self) -> None:
        plt = self.plt
        plt.title(f"{self.metric} per run" + (f" ({self.unit})" if self.unit else ""))
        if self.baseline:
            plt.scatter(list(range(1, len(self.baseline) + 1)), self.baseline, label="baseline", marker="o")
        if self.tuned:
            plt.scatter(list(range(1, len(self.tuned) + 1)), self.tuned, label="tuned", marker="x")
        plt.xlabel("run")
