# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench bench-quick warmup clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench,dashboard]'
	touch $(STAMP)

# The main job end to end on the embedded defaults, no network needed: the strategies backtest on the
# real daily history shipped in the package (fastopt/data/prices: BTC ETH BNB SOL to 2024-12-31) and the
# paper reconcile trades at its last closes. `make demo DEMO_OFFLINE=0` fetches fresh candles when online.
DEMO_OFFLINE ?= 1
demo: export FASTOPT_OFFLINE = $(DEMO_OFFLINE)
demo: $(STAMP)
	$(VENV)/bin/fastopt backtest --strategies strategies
	$(VENV)/bin/fastopt optimize --strategies strategies --config portfolio_config.json --target-vol 0.30
	$(VENV)/bin/fastopt walkforward --strategies strategies --lookback 365 --output walkforward
	$(VENV)/bin/fastopt backtest --strategies strategies --live --no-plot
	$(VENV)/bin/fastopt reconcile --once --exchange paper --config portfolio_config.json --strategies strategies
	$(VENV)/bin/fastopt status --config portfolio_config.json

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench

bench-quick: $(STAMP)
	$(PY) -m bench --quick

warmup: $(STAMP)
	$(PY) -m fastopt warmup

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
