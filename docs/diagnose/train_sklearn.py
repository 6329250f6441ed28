"""The scikit-learn model of bernoulli_rbm_m64.md: BernoulliRBM (m = 64) on the binarized MNIST subset.

    python docs/diagnose/train_sklearn.py          # writes mnist5k.npy and bernoulli_rbm_m64.joblib here
    snrbench diagnose bernoulli_rbm_m64.joblib --data mnist5k.npy --report bernoulli_rbm_m64.md
"""
import time

import joblib
import numpy as np
from sklearn.neural_network import BernoulliRBM

from snrbench.core.mnist_data import binarize, load_mnist5k

x = binarize(load_mnist5k()[0]).astype(np.float64)
np.save("mnist5k.npy", x)
t = time.time()
rbm = BernoulliRBM(n_components=64, learning_rate=0.05, batch_size=50, n_iter=20, random_state=0).fit(x)
print(f"sklearn fit {time.time() - t:.1f} s")
joblib.dump(rbm, "bernoulli_rbm_m64.joblib")
