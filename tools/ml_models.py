"""ONNX models of trained scikit-learn estimators, built with onnx.helper (skl2onnx is
not packaged in Debian), in the ai.onnx.ml form skl2onnx writes with
options={'zipmap': False}: a label output (int64) and a probabilities output.

Every builder takes a seeded dataset, fits the estimator and returns
(ModelProto, X float32, [expected outputs...]) with the expected outputs computed by
scikit-learn itself (predict / predict_proba / transform). Used by
tests/engine/test_ml.py; nothing is downloaded."""
import numpy as np
from onnx import TensorProto, helper

ML = "ai.onnx.ml"
F = TensorProto.FLOAT
I64 = TensorProto.INT64


def _model(nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, "sklearn", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 15),
                                               helper.make_opsetid(ML, 3)])


def _io(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _classifier_io(nf, ncls):
    return ([_io("X", F, [None, nf])],
            [_io("label", I64, [None]), _io("probabilities", F, [None, ncls])])


def data_classification(n_classes=3, n=200, nf=6, seed=0):
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=n, n_features=nf, n_informative=4, n_redundant=0,
                               n_classes=n_classes, n_clusters_per_class=1, random_state=seed)
    return X.astype(np.float32), y


def data_regression(n=200, nf=5, seed=0):
    from sklearn.datasets import make_regression
    X, y = make_regression(n_samples=n, n_features=nf, noise=0.5, random_state=seed)
    return X.astype(np.float32), y.astype(np.float32)


# ---- linear -------------------------------------------------------------------------

def logistic_regression(n_classes=3, seed=0):
    from sklearn.linear_model import LogisticRegression
    X, y = data_classification(n_classes, seed=seed)
    m = LogisticRegression(max_iter=500).fit(X, y)
    coef, icpt = m.coef_, m.intercept_
    if n_classes == 2:  # skl2onnx's binary form: both classes, logistic
        coef, icpt, pt = np.vstack([-coef, coef]), np.array([-icpt[0], icpt[0]]), "LOGISTIC"
    else:
        pt = "SOFTMAX"
    node = helper.make_node("LinearClassifier", ["X"], ["label", "probabilities"], domain=ML,
                            name="linear", coefficients=coef.astype(np.float32).ravel().tolist(),
                            intercepts=icpt.astype(np.float32).tolist(),
                            classlabels_ints=[int(c) for c in m.classes_], post_transform=pt)
    ins, outs = _classifier_io(X.shape[1], n_classes)
    return _model([node], ins, outs), X, [m.predict(X), m.predict_proba(X)]


def linear_regression(seed=0):
    from sklearn.linear_model import Ridge
    X, y = data_regression(seed=seed)
    m = Ridge(alpha=0.5).fit(X, y)
    node = helper.make_node("LinearRegressor", ["X"], ["variable"], domain=ML, name="ridge",
                            coefficients=m.coef_.astype(np.float32).tolist(),
                            intercepts=[float(m.intercept_)], targets=1)
    return (_model([node], [_io("X", F, [None, X.shape[1]])], [_io("variable", F, [None, 1])]),
            X, [m.predict(X).reshape(-1, 1)])


# ---- trees --------------------------------------------------------------------------

def _tree_attrs(trees, classifier, n_out, scale=1.0):
    """nodes_* and class_/target_* attributes of sklearn trees (tree_ objects)."""
    a = {k: [] for k in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values",
                         "nodes_modes", "nodes_truenodeids", "nodes_falsenodeids")}
    pfx = "class" if classifier else "target"
    w = {f"{pfx}_treeids": [], f"{pfx}_nodeids": [], f"{pfx}_ids": [], f"{pfx}_weights": []}
    for t, tree in enumerate(trees):
        for i in range(tree.node_count):
            leaf = tree.children_left[i] == -1
            a["nodes_treeids"].append(t)
            a["nodes_nodeids"].append(i)
            a["nodes_featureids"].append(0 if leaf else int(tree.feature[i]))
            a["nodes_values"].append(0.0 if leaf else float(np.float32(tree.threshold[i])))
            a["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            a["nodes_truenodeids"].append(0 if leaf else int(tree.children_left[i]))
            a["nodes_falsenodeids"].append(0 if leaf else int(tree.children_right[i]))
            if not leaf:
                continue
            v = tree.value[i][0] if classifier else tree.value[i][:, 0]
            if classifier:
                v = v / v.sum()
            for c in range(n_out):
                w[f"{pfx}_treeids"].append(t)
                w[f"{pfx}_nodeids"].append(i)
                w[f"{pfx}_ids"].append(c)
                w[f"{pfx}_weights"].append(float(v[c]) * scale)
    a.update(w)
    return a


def forest_classifier(n_classes=3, n_trees=5, seed=0):
    from sklearn.ensemble import RandomForestClassifier
    X, y = data_classification(n_classes, seed=seed)
    m = RandomForestClassifier(n_estimators=n_trees, max_depth=6, random_state=seed).fit(X, y)
    at = _tree_attrs([e.tree_ for e in m.estimators_], True, n_classes, 1.0 / n_trees)
    node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "probabilities"],
                            domain=ML, name="forest",
                            classlabels_int64s=[int(c) for c in m.classes_],
                            post_transform="NONE", **at)
    ins, outs = _classifier_io(X.shape[1], n_classes)
    return _model([node], ins, outs), X, [m.predict(X), m.predict_proba(X)]


def tree_regressor(kind="forest", seed=0):
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.tree import DecisionTreeRegressor
    X, y = data_regression(seed=seed)
    extra = {}
    if kind == "tree":
        m = DecisionTreeRegressor(max_depth=5, random_state=seed).fit(X, y)
        at = _tree_attrs([m.tree_], False, 1)
    elif kind == "forest":
        m = RandomForestRegressor(n_estimators=4, max_depth=5, random_state=seed).fit(X, y)
        at = _tree_attrs([e.tree_ for e in m.estimators_], False, 1)
        extra = {"aggregate_function": "AVERAGE"}
    else:
        m = GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=seed).fit(X, y)
        at = _tree_attrs([e[0].tree_ for e in m.estimators_], False, 1, m.learning_rate)
        base = float(np.asarray(m.init_.predict(X[:1])).ravel()[0])
        extra = {"base_values": [base]}
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["variable"], domain=ML, name=kind,
                            n_targets=1, post_transform="NONE", **at, **extra)
    return (_model([node], [_io("X", F, [None, X.shape[1]])], [_io("variable", F, [None, 1])]),
            X, [m.predict(X).reshape(-1, 1)])


# ---- SVM ------------------------------------------------------------------------------

def svr(seed=0):
    from sklearn.svm import SVR
    X, y = data_regression(n=120, seed=seed)
    m = SVR(kernel="rbf", C=10.0, gamma=0.1).fit(X, y)
    node = helper.make_node("SVMRegressor", ["X"], ["variable"], domain=ML, name="svr",
                            kernel_type="RBF", kernel_params=[0.1, 0.0, 3.0],
                            support_vectors=m.support_vectors_.astype(np.float32).ravel().tolist(),
                            coefficients=m.dual_coef_[0].astype(np.float32).tolist(),
                            rho=[float(m.intercept_[0])], n_supports=len(m.support_))
    return (_model([node], [_io("X", F, [None, X.shape[1]])], [_io("variable", F, [None, 1])]),
            X, [m.predict(X).reshape(-1, 1)])


def svc(n_classes=3, seed=0):
    from sklearn.svm import SVC
    X, y = data_classification(n_classes, n=150, seed=seed)
    m = SVC(kernel="rbf", C=1.0, gamma=0.2).fit(X, y)
    coef, rho = m.dual_coef_, m.intercept_
    if n_classes == 2:  # scikit-learn flips the binary decision; libsvm's sign is kept
        coef, rho = -coef, -rho
    node = helper.make_node("SVMClassifier", ["X"], ["label", "probabilities"], domain=ML,
                            name="svc", kernel_type="RBF", kernel_params=[0.2, 0.0, 3.0],
                            support_vectors=m.support_vectors_.astype(np.float32).ravel().tolist(),
                            vectors_per_class=[int(v) for v in m.n_support_],
                            coefficients=coef.astype(np.float32).ravel().tolist(),
                            rho=rho.astype(np.float32).tolist(),
                            classlabels_ints=[int(c) for c in m.classes_])
    ins, outs = _classifier_io(X.shape[1], 2 if n_classes == 2 else n_classes)
    return _model([node], ins, outs), X, [m.predict(X)]


# ---- preprocessing ----------------------------------------------------------------------

def preprocessing(kind, seed=0):
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import Binarizer, Normalizer, StandardScaler
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(50, 4)).astype(np.float32) * 3 + 1
    nf = X.shape[1]
    if kind == "scaler":
        m = StandardScaler().fit(X)
        node = helper.make_node("Scaler", ["X"], ["Y"], domain=ML, name=kind,
                                offset=m.mean_.astype(np.float32).tolist(),
                                scale=(1 / m.scale_).astype(np.float32).tolist())
    elif kind == "normalizer":
        m = Normalizer(norm="l2").fit(X)
        node = helper.make_node("Normalizer", ["X"], ["Y"], domain=ML, name=kind, norm="L2")
    elif kind == "binarizer":
        m = Binarizer(threshold=0.5).fit(X)
        node = helper.make_node("Binarizer", ["X"], ["Y"], domain=ML, name=kind, threshold=0.5)
    else:
        X[rng.random(X.shape) < 0.2] = np.nan
        m = SimpleImputer(strategy="mean").fit(X)
        node = helper.make_node("Imputer", ["X"], ["Y"], domain=ML, name=kind,
                                imputed_value_floats=m.statistics_.astype(np.float32).tolist(),
                                replaced_value_float=float("nan"))
    want = m.transform(X).astype(np.float32)
    return (_model([node], [_io("X", F, [None, nf])], [_io("Y", F, [None, nf])]), X, [want])


def one_hot(seed=0):
    from sklearn.preprocessing import OneHotEncoder
    rng = np.random.default_rng(seed)
    X = rng.choice([3, 7, 11, 20], size=(30, 1)).astype(np.int64)
    m = OneHotEncoder().fit(X)
    cats = [int(c) for c in m.categories_[0]]
    node = helper.make_node("OneHotEncoder", ["X"], ["Y"], domain=ML, name="ohe",
                            cats_int64s=cats, zeros=1)
    want = m.transform(X).toarray().astype(np.float32).reshape(30, 1, len(cats))
    return (_model([node], [_io("X", I64, [None, 1])], [_io("Y", F, [None, 1, len(cats)])]),
            X, [want])


def label_encoder(seed=0):
    from sklearn.preprocessing import LabelEncoder
    rng = np.random.default_rng(seed)
    y = rng.choice([5, 10, 42, 99], size=40).astype(np.int64)
    m = LabelEncoder().fit(y)
    node = helper.make_node("LabelEncoder", ["X"], ["Y"], domain=ML, name="labels",
                            keys_int64s=[int(c) for c in m.classes_],
                            values_int64s=list(range(len(m.classes_))), default_int64=-1)
    return (_model([node], [_io("X", I64, [None])], [_io("Y", I64, [None])]), y,
            [m.transform(y).astype(np.int64)])


def pipeline(seed=0):
    """StandardScaler -> ArrayFeatureExtractor (columns 2, 0, 3) -> LogisticRegression,
    as one graph: the shape of a typical skl2onnx Pipeline export."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = data_classification(3, seed=seed)
    cols = [2, 0, 3]
    m = make_pipeline(StandardScaler(),
                      ColumnTransformer([("pick", "passthrough", cols)]),
                      LogisticRegression(max_iter=500)).fit(X, y)
    sc, lr = m[0], m[2]
    nodes = [
        helper.make_node("Scaler", ["X"], ["scaled"], domain=ML, name="scaler",
                         offset=sc.mean_.astype(np.float32).tolist(),
                         scale=(1 / sc.scale_).astype(np.float32).tolist()),
        helper.make_node("ArrayFeatureExtractor", ["scaled", "cols"], ["picked"], domain=ML,
                         name="pick"),
        helper.make_node("LinearClassifier", ["picked"], ["label", "probabilities"], domain=ML,
                         name="logreg", coefficients=lr.coef_.astype(np.float32).ravel().tolist(),
                         intercepts=lr.intercept_.astype(np.float32).tolist(),
                         classlabels_ints=[int(c) for c in lr.classes_], post_transform="SOFTMAX"),
    ]
    inits = [helper.make_tensor("cols", I64, [len(cols)], cols)]
    ins, outs = _classifier_io(X.shape[1], 3)
    return _model(nodes, ins, outs, inits), X, [m.predict(X), m.predict_proba(X)]


BUILDERS = {
    "logreg_binary": lambda: logistic_regression(2),
    "logreg_multi": lambda: logistic_regression(3),
    "ridge": linear_regression,
    "forest_classifier": lambda: forest_classifier(3),
    "forest_classifier_binary": lambda: forest_classifier(2),
    "tree_regressor": lambda: tree_regressor("tree"),
    "forest_regressor": lambda: tree_regressor("forest"),
    "gbr": lambda: tree_regressor("gbr"),
    "svr": svr,
    "svc_multi": lambda: svc(3),
    "svc_binary": lambda: svc(2),
    "scaler": lambda: preprocessing("scaler"),
    "normalizer": lambda: preprocessing("normalizer"),
    "binarizer": lambda: preprocessing("binarizer"),
    "imputer": lambda: preprocessing("imputer"),
    "one_hot": one_hot,
    "label_encoder": label_encoder,
    "pipeline": pipeline,
}
