"""The seed's run as data (core.seed): the same random generator gives the same run, with the
shape the checks read back."""

from __future__ import annotations

import numpy as np
import pytest

from mlflowcheck.core import seed


def test_the_experiment_name_is_the_chinese_prefix_and_the_whole_seconds():
    assert seed.experiment_name(1700000000.9) == "本地测试实验_1700000000"
    assert seed.experiment_name().startswith(seed.EXPERIMENT_PREFIX)
    assert seed.experiment_name()[len(seed.EXPERIMENT_PREFIX) :].isdigit()


def test_the_metric_history_has_one_point_per_epoch_for_accuracy_and_loss():
    history = seed.metric_history(np.random.default_rng(42))
    assert list(history) == ["accuracy", "loss"]
    for points in history.values():
        assert [step for step, _ in points] == list(range(seed.EPOCHS)) == [0, 1, 2, 3, 4]
        assert all(isinstance(value, float) for _, value in points)


def test_the_metric_history_follows_its_trend_within_the_noise():
    history = seed.metric_history(np.random.default_rng(0))
    for epoch, value in history["accuracy"]:
        assert value == pytest.approx(0.7 + 0.05 * epoch, abs=0.05)
    for epoch, value in history["loss"]:
        assert value == pytest.approx(1.0 - 0.15 * epoch, abs=0.05)


def test_the_same_seed_gives_the_same_history_and_data_and_another_seed_another():
    assert seed.metric_history(np.random.default_rng(7)) == seed.metric_history(np.random.default_rng(7))
    assert seed.metric_history(np.random.default_rng(7)) != seed.metric_history(np.random.default_rng(8))
    first, again = seed.sample_data(np.random.default_rng(7)), seed.sample_data(np.random.default_rng(7))
    assert first.equals(again)
    assert not first.equals(seed.sample_data(np.random.default_rng(8)))


def test_the_sample_data_has_the_features_and_a_binary_target_on_100_rows():
    data = seed.sample_data(np.random.default_rng(1))
    assert list(data.columns) == [*seed.FEATURES, seed.TARGET] == ["feature_1", "feature_2", "target"]
    assert len(data) == seed.ROWS == 100
    assert set(data[seed.TARGET].unique()) == {0, 1}
    assert data[seed.FEATURES].dtypes.tolist() == [np.float64, np.float64]


def test_the_model_trained_on_the_data_predicts_its_two_classes():
    data = seed.sample_data(np.random.default_rng(3))
    model = seed.train_model(data)
    assert list(model.classes_) == [0, 1]
    assert model.predict(data[seed.FEATURES]).shape == (seed.ROWS,)
