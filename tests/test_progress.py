"""Long work without a terminal logs its progress at an interval instead of drawing a bar."""

from __future__ import annotations

import logging

from tqdm.auto import tqdm

from training.progress import LoggedProgress, progress_bar


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_is_logged_once_per_interval_with_rate_and_time_left():
    clock, lines = Clock(), []
    bar = LoggedProgress(100, "train", "batch", 60, clock=clock, emit=lines.append)
    for _ in range(10):  # 10 batches in 50 s: no line yet
        clock.now += 5
        bar.update()
    assert lines == []
    clock.now += 10
    bar.set_postfix(epoch=1, loss="0.4200")
    bar.update(2)
    assert lines == ["train 12/100 batch (12%), 1.0 min elapsed, 0.20 batch/s, 7.3 min left, epoch=1, loss=0.4200"]
    clock.now += 30
    bar.update()
    assert len(lines) == 1  # 30 s after the last line


def test_close_logs_the_final_count_once():
    clock, lines = Clock(), []
    bar = LoggedProgress(4, "teacher", "sentence", 0, clock=clock, emit=lines.append)
    clock.now += 2
    bar.update(4)
    bar.close()
    bar.close()
    assert lines == ["teacher 4/4 sentence (100%), 0.0 min elapsed, 2.00 sentence/s, 0.0 min left"]


def test_a_terminal_gets_a_tqdm_bar_and_a_log_file_gets_log_lines(caplog):
    bar = progress_bar(3, "auto-annotate", "sent", terminal=True, interval_s=60)
    assert isinstance(bar, tqdm)
    bar.close()
    with caplog.at_level(logging.INFO, logger="sciner.progress"):
        logged = progress_bar(3, "auto-annotate", "sent", terminal=False, interval_s=60)
        logged.update(3)
        logged.close()
    assert [r.getMessage().split(",")[0] for r in caplog.records] == ["auto-annotate 3/3 sent (100%)"]
