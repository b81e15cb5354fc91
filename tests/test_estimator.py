"""The estimator protocol of cod_monitor._estimator, and its compatibility with
scikit-learn's tools (scikit-learn is a test dependency here, not an import of the
forecasting stack)."""

import pickle

import numpy as np
import pytest

from cod_monitor._estimator import (ClusterMixin, Estimator, check_is_fitted, check_random_state,
                                    clone)
from cod_monitor.cod import CODForecaster, ImprovedMeanShift
from cod_monitor.cod.routing import RoutedCOD
from cod_monitor.exceptions import NotFittedError


class Inner(Estimator):
    def __init__(self, alpha=1.0, items=None):
        self.alpha = alpha
        self.items = items


class Outer(Estimator):
    def __init__(self, inner=None, n=3):
        self.inner = inner
        self.n = n


def test_params_shallow_and_deep():
    est = Outer(inner=Inner(alpha=2.0), n=5)
    assert est.get_params(deep=False) == {"inner": est.inner, "n": 5}
    deep = est.get_params()
    assert deep["inner__alpha"] == 2.0 and deep["inner__items"] is None and deep["n"] == 5


def test_set_params_reaches_nested_estimators_and_rejects_unknown_names():
    est = Outer(inner=Inner())
    assert est.set_params(n=7, inner__alpha=0.5) is est
    assert est.n == 7 and est.inner.alpha == 0.5
    with pytest.raises(ValueError, match="invalid parameter 'nn'.*valid parameters are"):
        est.set_params(nn=1)


def test_clone_copies_parameters_without_sharing_state():
    items = [1, 2]
    est = Outer(inner=Inner(items=items), n=4)
    est.fitted_ = True
    copy = clone(est)
    assert type(copy) is Outer and copy.n == 4 and not hasattr(copy, "fitted_")
    assert copy.inner is not est.inner and copy.inner.items == items
    assert copy.inner.items is not items


def test_repr_shows_only_changed_parameters():
    assert repr(Outer()) == "Outer()"
    assert repr(Outer(n=4)) == "Outer(n=4)"
    assert repr(RoutedCOD(n_bootstrap=7)) == "RoutedCOD(n_bootstrap=7)"


def test_check_is_fitted():
    est = Inner()
    with pytest.raises(NotFittedError, match="Inner is not fitted"):
        check_is_fitted(est)
    with pytest.raises(ValueError):  # also a ValueError and an AttributeError, as sklearn's
        check_is_fitted(est, "coef_")
    est.coef_ = 1
    check_is_fitted(est)
    check_is_fitted(est, "coef_")


def test_check_random_state_gives_numpy_streams():
    a, b = check_random_state(3), np.random.RandomState(3)
    assert a.randint(1 << 30) == b.randint(1 << 30)
    rs = np.random.RandomState(0)
    assert check_random_state(rs) is rs
    assert check_random_state(None) is np.random.mtrand._rand
    with pytest.raises(ValueError, match="random_state = 'x'"):
        check_random_state("x")


def test_cluster_mixin_fit_predict():
    class Labels(ClusterMixin, Estimator):
        def fit(self, X):
            self.labels_ = np.arange(len(X))
            return self

    assert Labels().fit_predict(np.zeros((3, 2))).tolist() == [0, 1, 2]


def test_scikit_learn_clone_accepts_the_estimators():
    from sklearn.base import clone as sk_clone

    est = CODForecaster(n_bootstrap=11, clustering=ImprovedMeanShift(quantile=0.2))
    copy = sk_clone(est)
    assert type(copy) is CODForecaster and copy.clustering is not est.clustering
    assert copy.get_params()["clustering__quantile"] == 0.2 and copy.n_bootstrap == 11


def test_estimators_pickle():
    est = RoutedCOD(n_bootstrap=5)
    assert pickle.loads(pickle.dumps(est)).get_params() == est.get_params()
