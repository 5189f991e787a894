"""Venues: the embedded paper exchange (:mod:`.paper`, its prices in :mod:`.prices`), any ccxt exchange
(:mod:`.ccxt_venue`) and one profile per venue that departs from plain ccxt (:mod:`.profile`,
:mod:`.binanceusdm`, ...)."""
