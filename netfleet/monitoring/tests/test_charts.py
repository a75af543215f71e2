"""Time frames and buckets as the reference system chooses them."""

from datetime import UTC, datetime

import pytest

from netfleet.monitoring import charts

NOW = datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC)


@pytest.mark.parametrize(
    ("frame", "bucket_minutes", "buckets"),
    [("1d", 10, 145), ("3d", 20, 217), ("7d", 60, 169), ("30d", 1440, 31), ("365d", 10080, 53)],
)
def test_time_frames(frame, bucket_minutes, buckets):
    span = charts.time_range({"time": frame}, now=NOW)
    assert span.bucket == bucket_minutes * 60_000_000
    assert len(span.x) == buckets  # the partial buckets at both ends included
    assert span.start % span.bucket == 0 and span.end > charts.to_us(NOW)


def test_default_is_7d():
    assert charts.time_range({}, now=NOW) == charts.time_range({"time": "7d"}, now=NOW)


@pytest.mark.parametrize(
    ("start", "end", "bucket_minutes"),
    [
        ("2024-03-01 00:00:00", "2024-03-01 06:00:00", 10),
        ("2024-03-01 00:00:00", "2024-03-03 00:00:00", 20),
        ("2024-03-01 00:00:00", "2024-03-05 00:00:00", 60),
        ("2024-01-01 00:00:00", "2024-01-20 0:0:0", 1440),
        ("2023-01-01 00:00:00", "2024-01-01 00:00:00", 10080),
        ("2020-01-01 00:00:00", "2024-01-01 00:00:00", 10080),
    ],
)
def test_custom_range_takes_the_bucket_of_the_covering_frame(start, end, bucket_minutes):
    span = charts.time_range({"start": start, "end": end}, now=NOW)
    assert span.bucket == bucket_minutes * 60_000_000
