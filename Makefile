# Shortcuts for the book's routine commands (each is one line you can also type yourself).
PYTHON ?= python

.PHONY: help install book strict test notebooks setup-cells times numbers ci clean \
        ko site catalogues ko-notebooks

help:          ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

install:       ## install the pinned requirements and resnet_edu (editable)
	$(PYTHON) -m pip install -r requirements.txt

book:          ## build the website into _build/html
	jupyter-book build .

strict:        ## build the website with warnings as errors, as the tests do
	jupyter-book build . -W -n --keep-going

ko:            ## build the Korean edition into _build/html/ko (scripts/build_edition.py)
	$(PYTHON) scripts/build_edition.py ko

site:          ## build both editions: English into _build/html, Korean into _build/html/ko
	jupyter-book build .
	$(PYTHON) scripts/build_edition.py ko

catalogues:    ## re-extract the English messages and merge them into locales/ko (PAGES=book/01_convolution for some)
	$(PYTHON) scripts/catalogues.py $(PAGES)

ko-notebooks:  ## regenerate the Korean notebooks in ko/book from the notebooks and the catalogues
	$(PYTHON) scripts/ko_notebooks.py

test:          ## run every test: unit tests, hygiene, strict build, browser, nbval
	$(PYTHON) -m pytest

notebooks:     ## re-execute every notebook in place (NB=book/04_residual_block.ipynb for one)
	$(PYTHON) scripts/execute_notebooks.py $(NB)

setup-cells:   ## rewrite every notebook's setup cell from _config.yml, without executing
	$(PYTHON) scripts/execute_notebooks.py --fix-setup --no-execute $(NB)

times:         ## nbval time of each notebook and the build time, against the budgets
	$(PYTHON) scripts/nbval_times.py $(NB)

numbers:       ## list prose numbers that no cell prints and nothing cites (NB=... for one)
	$(PYTHON) tests/test_prose_numbers.py $(NB)

ci:            ## what CI runs on a fresh Debian machine
	bash .ci/run

clean:         ## remove the built website
	rm -rf _build
