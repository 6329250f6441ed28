"""The scikit-learn models of the diagnose examples: BernoulliRBMs on the binarized MNIST subset.

    python docs/diagnose/train_sklearn.py            # writes mnist5k.npy and bernoulli_rbm_m64.joblib here
    python docs/diagnose/train_sklearn.py 500 5      # bernoulli_rbm_m500.joblib (m = 500, 5 epochs)
    snrbench diagnose bernoulli_rbm_m64.joblib --data mnist5k.npy --report bernoulli_rbm_m64.md
"""
import sys
import time

import joblib
import numpy as np
from sklearn.neural_network import BernoulliRBM

from snrbench.core.mnist_data import binarize, load_mnist5k

m = int(sys.argv[1]) if len(sys.argv) > 1 else 64
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
x = binarize(load_mnist5k()[0]).astype(np.float64)
np.save("mnist5k.npy", x)
t = time.time()
rbm = BernoulliRBM(n_components=m, learning_rate=0.05, batch_size=50, n_iter=epochs, random_state=0).fit(x)
print(f"sklearn fit {time.time() - t:.1f} s")
joblib.dump(rbm, f"bernoulli_rbm_m{m}.joblib")
