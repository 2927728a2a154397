"""Bradley-Terry references for Tests/QuillReviewTests: synthetic battles among systems of known
strength, fitted two independent ways:

- FastChat's `compute_mle_elo` formulation (Chatbot Arena): a logistic regression without
  intercept or penalty on rows +ln 10 / -ln 10, wins weighted 2 and ties 1 each way, ratings
  400 * coef + 1000 (sklearn, tolerance tightened to 1e-12 so the solver's stopping point does
  not blur the comparison);
- choix's ILSR (Newman's iterative Luce spectral ranking) on the same weighted data, given as
  duplicated (winner, loser) pairs, its log-strengths centred and put on the same scale.

    pip install numpy scikit-learn choix
    python3 Tests/QuillReviewTests/Fixtures/make_bt_references.py   # writes bt-references.json
"""
import json, math, os
import numpy as np
from sklearn.linear_model import LogisticRegression
import choix

HERE = os.path.dirname(os.path.abspath(__file__))


def battles(true_ratings, count, tie_rate, seed):
    rng = np.random.default_rng(seed)
    k = len(true_ratings)
    out = []
    for _ in range(count):
        a, b = rng.choice(k, size=2, replace=False)
        a, b = int(min(a, b)), int(max(a, b))
        if rng.random() < tie_rate:
            out.append([a, b, "tie"])
            continue
        p = 1 / (1 + 10 ** ((true_ratings[b] - true_ratings[a]) / 400))
        out.append([a, b, "first" if rng.random() < p else "second"])
    return out


def weights(data, k):
    w = np.zeros((k, k))
    for a, b, o in data:
        if o == "first": w[a, b] += 2
        elif o == "second": w[b, a] += 2
        else: w[a, b] += 1; w[b, a] += 1
    return w


def fastchat(data, k):
    w = weights(data, k)
    rows, ys, sw = [], [], []
    for a in range(k):
        for b in range(k):
            if a == b or (w[a, b] + w[b, a]) == 0: continue
            x = np.zeros(k); x[a] = math.log(10); x[b] = -math.log(10)
            rows += [x, x]; ys += [1.0, 0.0]; sw += [w[a, b], w[b, a]]
    lr = LogisticRegression(fit_intercept=False, penalty=None, tol=1e-12, max_iter=100000)
    lr.fit(np.array(rows), np.array(ys), sample_weight=np.array(sw))
    return (400 * lr.coef_[0] + 1000).tolist()


def with_choix(data, k):
    w = weights(data, k)
    pairs = [(a, b) for a in range(k) for b in range(k) for _ in range(int(w[a, b]))]
    theta = choix.ilsr_pairwise(k, pairs, alpha=0.0, tol=1e-14, max_iter=100000)
    theta = theta - theta.mean()
    return (400 / math.log(10) * theta + 1000).tolist()


cases = []
for name, true, count, ties, seed in [("five systems, 2000 battles", [1000, 1050, 980, 1120, 900], 2000, 0.15, 1),
                                      ("three systems, 60 battles", [1000, 1100, 950], 60, 0.2, 2),
                                      ("two systems, no ties", [1000, 1030], 300, 0.0, 3)]:
    data = battles(true, count, ties, seed)
    k = len(true)
    cases.append({"name": name, "systems": k, "true_ratings": true, "battles": data,
                  "fastchat": fastchat(data, k), "choix": with_choix(data, k)})
    print(name, "fastchat", [round(r, 4) for r in cases[-1]["fastchat"]], "choix", [round(r, 4) for r in cases[-1]["choix"]])
with open(os.path.join(HERE, "bt-references.json"), "w") as f:
    json.dump(cases, f)
