import asyncio

from tui.app import make_app


def test_placeholder_screen_lists_images_and_quits():
    async def scenario():
        app = make_app()
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.query_one("#images")
            cols = [c.label.plain for c in table.columns.values()]
            await pilot.press("q")
        return cols, app.is_running

    cols, running = asyncio.run(scenario())
    assert cols == ["image", "kernel", "base sha256", "MiB"]
    assert running is False
