import pytest

from tests.faults.tally import TALLY


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = str(item.fspath)
        if "/tests/vm/" in path or "/tests/faults/" in path:
            item.add_marker(pytest.mark.vm)
        if "/tests/faults/" in path:
            item.add_marker(pytest.mark.fault)


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if "fault" in report.keywords and report.outcome != "skipped":
            TALLY.injected += 1
            TALLY.survived += report.outcome == "passed"


def pytest_terminal_summary(terminalreporter):
    if TALLY.injected:
        terminalreporter.write_line(
            f"faults: injected={TALLY.injected} survived={TALLY.survived} lost_results={TALLY.lost_results}")
