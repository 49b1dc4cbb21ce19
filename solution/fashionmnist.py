"""Your own network for Fashion-MNIST (open design).

Design any model you like in ``FashionNet``, train it, and hand in:
  - ``fmnist.pth``: the trained weights, saved with ``save_model`` (a
    state_dict; the grader loads it with ``torch.load(..., weights_only=True)``
    into ``build_model()`` and needs a test accuracy of at least the
    threshold (0.80));
  - ``fmnist_training_loss.png``: the training loss over time;
  - ``fmnist_misclassified.png`` and ``fmnist_correct.png``: one misclassified
    and one correctly classified test image, each titled with the predicted
    and the true class names.

The interface the grader uses (keep these names and signatures):
  build_model() -> nn.Module        a fresh, untrained FashionNet
  predict(model, X) -> labels       X float32 (N, 1, 28, 28) in [0, 1]
  count_parameters(model) -> int
No function changes the tensors it is given: work on copies where you need to.

Run ``python fashionmnist.py`` to train, save the four files and print the
test accuracy against the threshold (0.80).
"""
import sys
import time

import matplotlib
import torch
import torch.nn as nn

from utils import (CLASS_NAMES, assert_greater_equal, exit_if_unimplemented,
                   load_mnist_f, pick_device, print_blue, run_doctests)

THRESHOLD = 0.80
WEIGHTS_FILE = "fmnist.pth"
LOSS_PLOT_FILE = "fmnist_training_loss.png"
MISCLASSIFIED_FILE = "fmnist_misclassified.png"
CORRECT_FILE = "fmnist_correct.png"
EVAL_CHUNK = 1000


class FashionNet(nn.Module):
    """Your architecture.  Input float32 (N, 1, 28, 28) in [0, 1]; output
    logits float32 (N, 10).  The constructor takes no arguments."""

    def __init__(self):
        super().__init__()
        self.net = None
        # BEGIN SOLUTION
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),                                   # (N, 32, 14, 14)
            nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2),                                   # (N, 64, 7, 7)
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(128, 10),
        )
        # END SOLUTION

    def forward(self, X):
        """Logits (N, 10) for X float32 (N, 1, 28, 28).

        >>> FashionNet()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
        """
        return self.net(X)


def build_model():
    """A fresh, untrained model.  The grader calls this, then loads fmnist.pth."""
    return FashionNet()


def count_parameters(model):
    """Number of trainable parameters (those with requires_grad) of ``model``.

    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    count = 0
    # BEGIN SOLUTION
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # END SOLUTION
    return count


def train_model(model, X_train, y_train, epochs, batch_size=128, learning_rate=0.001):
    """Train ``model`` in place.  X_train float32 (N, 1, 28, 28) in [0, 1];
    y_train integer labels (N,).  Returns the list of training losses, one
    float per optimiser step, for the loss plot.
    """
    losses = []
    # BEGIN SOLUTION
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    n = X_train.shape[0]
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(X_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        print_blue(f"epoch {epoch + 1}/{epochs}: last loss {losses[-1]:.4f}")
    # END SOLUTION
    return losses


def predict(model, X):
    """Predicted labels, an integer tensor (N,), for X float32 (N, 1, 28, 28)
    in [0, 1].  Evaluation mode, no gradients.

    >>> predict(build_model(), torch.zeros(3, 1, 28, 28)).shape
    torch.Size([3])
    """
    labels = torch.zeros(X.shape[0], dtype=torch.long)
    # BEGIN SOLUTION
    model.eval()
    with torch.no_grad():
        labels = torch.cat([model(X[s:s + EVAL_CHUNK]).argmax(dim=1)
                            for s in range(0, X.shape[0], EVAL_CHUNK)])
    # END SOLUTION
    return labels


def evaluate(model, X, y):
    """Accuracy in [0, 1] of ``model`` on X float32 (N, 1, 28, 28) and integer labels y (N,)."""
    return float((predict(model, X) == y).float().mean())


def save_model(model, path=WEIGHTS_FILE):
    """Save the weights as a state_dict (plain tensors only)."""
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)


def load_model(path=WEIGHTS_FILE):
    """build_model() with the weights of ``path``, loaded safely, in evaluation mode."""
    model = build_model()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    return model


def plot_training_loss(losses, path=LOSS_PLOT_FILE):
    """Plot the training loss against the optimiser step; save it to ``path``."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    # BEGIN SOLUTION
    ax.plot(range(1, len(losses) + 1), losses)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss")
    ax.set_title("FashionNet training loss")
    fig.tight_layout()
    # END SOLUTION
    fig.savefig(path)
    plt.close(fig)


def save_example_images(model, X_test, y_test):
    """Save one misclassified and one correctly classified test image, each
    titled "predicted: <class name> / true: <class name>" (use CLASS_NAMES),
    to fmnist_misclassified.png and fmnist_correct.png."""
    import matplotlib.pyplot as plt
    predicted = predict(model, X_test)
    # BEGIN SOLUTION
    wrong = int(torch.nonzero(predicted != y_test)[0])
    right = int(torch.nonzero(predicted == y_test)[0])
    for index, path in ((wrong, MISCLASSIFIED_FILE), (right, CORRECT_FILE)):
        fig, ax = plt.subplots(figsize=(3, 3.4))
        ax.imshow(X_test[index, 0].cpu().numpy(), cmap="gray")
        ax.set_title(f"predicted: {CLASS_NAMES[int(predicted[index])]}\n"
                     f"true: {CLASS_NAMES[int(y_test[index])]}")
        ax.axis("off")
        fig.savefig(path)
        plt.close(fig)
    # END SOLUTION


def main():
    exit_if_unimplemented(__file__)
    run_doctests(sys.modules[__name__])
    matplotlib.use("Agg")
    torch.manual_seed(0)
    device = pick_device()
    X_train, y_train, X_test, y_test = load_mnist_f(return_tensor=True)
    X_train = X_train.unsqueeze(1).float().div(255).to(device)
    X_test = X_test.unsqueeze(1).float().div(255).to(device)
    y_train, y_test = y_train.to(device), y_test.to(device)

    start = time.time()
    model = build_model().to(device)
    print_blue(f"FashionNet has {count_parameters(model):,} trainable parameters")
    losses = train_model(model, X_train, y_train, epochs=5)
    print_blue(f"trained in {time.time() - start:.1f} s on {device}")
    save_model(model)
    plot_training_loss(losses)
    save_example_images(model, X_test.cpu(), y_test.cpu())
    print_blue(f"saved {WEIGHTS_FILE}, {LOSS_PLOT_FILE}, {MISCLASSIFIED_FILE}, {CORRECT_FILE}")
    reloaded = load_model()
    ok = assert_greater_equal(evaluate(reloaded, X_test.cpu(), y_test.cpu()), THRESHOLD,
                              "FashionNet test accuracy")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
