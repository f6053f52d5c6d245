"""Bin fill level from distance and bin geometry."""

from __future__ import annotations

import numpy as np

from stadtpuls.ingest.codecs.base import Column
from stadtpuls.ingest.codecs.fill_level import fill_pct, param


def test_fill_is_linear_between_depth_and_full_level_and_clipped() -> None:
    distance = Column(np.array([1000, 100, 1200, 1900, 2500]), np.ones(5, dtype=bool))
    col = fill_pct(distance, {"depth_mm": np.full(5, 2000.0), "full_mm": np.full(5, 200.0)})
    assert col.present.all()
    assert np.allclose(col.values, [1000 / 1800 * 100, 100.0, 800 / 1800 * 100, 100 / 1800 * 100, 0.0])


def test_full_level_defaults_to_the_sensor_and_missing_geometry_gives_no_fill() -> None:
    distance = Column(np.array([500, 500, 500, 500]), np.array([True, True, True, False]))
    col = fill_pct(distance, {"depth_mm": np.array([1000.0, np.nan, 100.0, 1000.0])})
    assert col.present.tolist() == [True, False, True, False]
    assert col.values[0] == 50.0 and col.values[2] == 0.0
    assert not fill_pct(distance, {}).present.any()
    assert not fill_pct(distance, {"depth_mm": np.full(4, 300.0), "full_mm": np.full(4, 400.0)}).present.any()


def test_param_broadcasts_scalars_and_marks_missing_as_nan() -> None:
    assert param({"depth_mm": np.array(1500)}, "depth_mm", 3).tolist() == [1500.0] * 3
    assert np.isnan(param({}, "depth_mm", 2)).all()
