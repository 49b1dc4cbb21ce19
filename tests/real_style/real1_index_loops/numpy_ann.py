"""A two-layer neural network in plain numpy, trained on Fashion-MNIST.

Inputs everywhere in this file:
  X       float64 array (N, input_size), pixels scaled to [0, 1]
  y_true  float64 one-hot array (N, output_size)
No method changes the arrays it is given: work on copies where you need to.

Run ``python numpy_ann.py`` to run the doctests, train, and print the test
accuracy against the assignment's threshold (0.77).
"""
import sys
import time

import numpy as np

from utils import (assert_greater_equal, exit_if_unimplemented, load_mnist_f,
                   one_hot, print_blue, run_doctests)

THRESHOLD = 0.77


class NumpyANN:
    """input -> Linear -> ReLU -> Linear -> softmax.

    Parameters (float64): W1 (input_size, hidden_size), b1 (1, hidden_size),
    W2 (hidden_size, output_size), b2 (1, output_size).
    """

    def __init__(self, input_size, hidden_size, output_size, lr, random_seed=42):
        np.random.seed(random_seed)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.lr = lr
        self.W1 = np.random.randn(input_size, hidden_size) * 0.01
        self.b1 = np.zeros((1, hidden_size))
        self.W2 = np.random.randn(hidden_size, output_size) * 0.01
        self.b2 = np.zeros((1, output_size))
        # Not graded: filled by train() for your own plots.
        self.train_val_metrics = {"train_losses": [], "train_accs": [], "val_losses": [], "val_accs": []}

    def _relu(self, z):
        """Element-wise max(z, 0).

        z: array of any shape and numeric dtype.  Returns an array of z's shape.

        >>> NumpyANN(2, 2, 2, 0.1)._relu(np.array([-1.0, 0.0, 2.0]))
        array([0., 0., 2.])
        """
        out = np.zeros_like(z)
        # >>> YOUR CODE HERE >>>
        out = np.maximum(z, 0)
        # <<< END OF YOUR CODE <<<
        return out

    def _relu_grad(self, z):
        """Derivative of ReLU: 0 where z <= 0 and 1 elsewhere (0 at exactly 0).

        z: array of any shape.  Returns an array of z's shape.

        >>> NumpyANN(2, 2, 2, 0.1)._relu_grad(np.array([-1.0, 0.0, 2.0]))
        array([0., 0., 1.])
        """
        out = np.zeros(np.shape(z))
        # >>> YOUR CODE HERE >>>
        out[z > 0] = 1
        # <<< END OF YOUR CODE <<<
        return out

    def _softmax(self, z):
        """Row-wise softmax, numerically stable (subtract each row's max first).

        z: float array (N, C) of logits.  Returns float (N, C); each row sums to 1.

        >>> p = NumpyANN(2, 2, 2, 0.1)._softmax(np.array([[1000.0, 1000.0]]))
        >>> p
        array([[0.5, 0.5]])
        """
        out = np.zeros(np.shape(z))
        # >>> YOUR CODE HERE >>>
        # subtract the max of every row so exp never overflows
        exps = np.exp(z - np.max(z, axis=1, keepdims=True))
        out = exps / np.sum(exps, axis=1, keepdims=True)
        # <<< END OF YOUR CODE <<<
        return out

    def _cross_entropy(self, y_pred, y_true):
        """Mean cross-entropy over the N samples: -mean_n sum_c y_true * log(y_pred).

        y_pred: float (N, C) probabilities (rows sum to 1);
        y_true: float (N, C) one-hot labels.  Returns a scalar (float or
        np.float64).  Recommended, not required: clip y_pred to
        [1e-12, 1] before the log, so a probability of 0 gives a finite loss.

        >>> ann = NumpyANN(2, 2, 2, 0.1)
        >>> round(float(ann._cross_entropy(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]]))), 5)
        0.69315
        """
        loss = 0.0
        # >>> YOUR CODE HERE >>>
        N = y_pred.shape[0]
        y_pred = np.clip(y_pred, 1e-12, 1)
        loss = -np.sum(y_true * np.log(y_pred)) / N
        # <<< END OF YOUR CODE <<<
        return loss

    def _forward(self, X, training=True):
        """Forward pass: z1 = X W1 + b1, a1 = relu(z1), z2 = a1 W2 + b2, a2 = softmax(z2).

        X: float64 (N, input_size).  Returns a2, float64 (N, output_size).
        When ``training`` is True, store z1, a1 (N, hidden_size) and z2, a2
        (N, output_size) on self for _backward; when False, leave them alone.

        >>> ann = NumpyANN(3, 4, 2, 0.1)
        >>> ann._forward(np.ones((5, 3))).shape
        (5, 2)
        """
        a2 = np.zeros((X.shape[0], self.output_size))
        # >>> YOUR CODE HERE >>>
        z1 = np.dot(X, self.W1) + self.b1
        a1 = self._relu(z1)
        z2 = np.dot(a1, self.W2) + self.b2
        a2 = self._softmax(z2)
        if training:
            self.z1, self.a1, self.z2, self.a2 = z1, a1, z2, a2
        # <<< END OF YOUR CODE <<<
        return a2

    def _backward(self, X, y_true):
        """Backward pass and one SGD step, using the values stored by _forward.

        X: float64 (N, input_size); y_true: float64 one-hot (N, output_size).
        Gradients of the *mean* cross-entropy over the N samples (divide by N),
        then update in place: W1 -= lr * dW1, b1 -= lr * db1, and the same for
        W2, b2.  Returns nothing.

        Check your gradients with ``utils.gradient_check``:

        >>> from utils import gradient_check
        >>> ann = NumpyANN(4, 3, 2, 0.1)
        >>> X = np.random.rand(5, 4); y = np.eye(2)[[0, 1, 1, 0, 1]]
        >>> max(gradient_check(ann, X, y).values()) < 1e-6
        True
        """
        # >>> YOUR CODE HERE >>>
        N = X.shape[0]
        # output layer (softmax + cross entropy together give a2 - y)
        dz2 = (self.a2 - y_true) / N
        dW2 = np.dot(self.a1.T, dz2)
        db2 = np.sum(dz2, axis=0, keepdims=True)
        # hidden layer
        da1 = np.dot(dz2, self.W2.T)
        dz1 = da1 * self._relu_grad(self.z1)
        dW1 = np.dot(X.T, dz1)
        db1 = np.sum(dz1, axis=0, keepdims=True)
        # gradient descent step
        self.W1 -= self.lr * dW1
        self.b1 -= self.lr * db1
        self.W2 -= self.lr * dW2
        self.b2 -= self.lr * db2
        # <<< END OF YOUR CODE <<<

    def train(self, X_train, y_train, X_val, y_val, epochs, batch_size):
        """Mini-batch SGD: for each epoch, for each batch of ``batch_size`` rows
        in order (the last batch may be smaller), call self._forward(batch)
        then self._backward(batch, labels) once.

        X_train, X_val: float64 (N, input_size); y_train, y_val: one-hot float64.
        Optional, not graded: append the epoch's loss and accuracy on both
        sets to self.train_val_metrics.

        >>> ann = NumpyANN(3, 4, 2, 0.1)
        >>> X = np.random.rand(10, 3); y = np.eye(2)[np.arange(10) % 2]
        >>> ann.train(X, y, X, y, epochs=2, batch_size=4)
        >>> len(ann.train_val_metrics["val_accs"])
        2
        """
        # >>> YOUR CODE HERE >>>
        N = X_train.shape[0]
        for epoch in range(epochs):
            for i in range(0, N, batch_size):
                X_batch = X_train[i:i + batch_size]
                y_batch = y_train[i:i + batch_size]
                self._forward(X_batch)
                self._backward(X_batch, y_batch)
            # metrics after the epoch
            train_loss = self._cross_entropy(self.predict(X_train), y_train)
            val_loss = self._cross_entropy(self.predict(X_val), y_val)
            train_acc = self.accuracy(X_train, y_train)
            val_acc = self.accuracy(X_val, y_val)
            self.train_val_metrics["train_losses"].append(train_loss)
            self.train_val_metrics["train_accs"].append(train_acc)
            self.train_val_metrics["val_losses"].append(val_loss)
            self.train_val_metrics["val_accs"].append(val_acc)
            print(f"Epoch {epoch + 1}/{epochs} - loss: {train_loss:.4f} - acc: {train_acc:.4f} "
                  f"- val_loss: {val_loss:.4f} - val_acc: {val_acc:.4f}")
        # <<< END OF YOUR CODE <<<

    def predict(self, X):
        """Class probabilities, float64 (N, output_size); does not change the
        stored activations or the weights.

        >>> NumpyANN(3, 4, 2, 0.1).predict(np.ones((2, 3))).sum(axis=1)
        array([1., 1.])
        """
        probs = np.zeros((X.shape[0], self.output_size))
        # >>> YOUR CODE HERE >>>
        probs = self._forward(X, training=False)
        # <<< END OF YOUR CODE <<<
        return probs

    def accuracy(self, X, y_true):
        """Fraction of rows whose most probable class is the one-hot label's.

        X: float64 (N, input_size); y_true: one-hot (N, output_size).
        Returns a scalar in [0, 1].

        >>> ann = NumpyANN(3, 4, 2, 0.1)
        >>> 0.0 <= float(ann.accuracy(np.ones((2, 3)), np.eye(2))) <= 1.0
        True
        """
        acc = 0.0
        # >>> YOUR CODE HERE >>>
        y_hat = np.argmax(self.predict(X), axis=1)
        y = np.argmax(y_true, axis=1)
        acc = np.sum(y_hat == y) / len(y)
        # <<< END OF YOUR CODE <<<
        return acc


def main():
    exit_if_unimplemented(__file__)
    run_doctests(sys.modules[__name__])
    X_train, y_train, X_test, y_test = load_mnist_f()
    X_train = X_train.reshape(-1, 784).astype(np.float64) / 255.0
    X_test = X_test.reshape(-1, 784).astype(np.float64) / 255.0
    y_train, y_test = one_hot(y_train), one_hot(y_test)
    # The last 10,000 training images validate; the test set is only for the end.
    X_tr, y_tr, X_val, y_val = X_train[:50000], y_train[:50000], X_train[50000:], y_train[50000:]

    start = time.time()
    model = NumpyANN(784, 128, 10, lr=0.1)
    model.train(X_tr, y_tr, X_val, y_val, epochs=10, batch_size=64)
    print_blue(f"trained in {time.time() - start:.1f} s")
    ok = assert_greater_equal(model.accuracy(X_test, y_test), THRESHOLD, "NumpyANN test accuracy")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
