"""Stage forecasts with measured skill: pure, uses ``devices`` only.

:mod:`forecast.models` (spec → fit → a fitted model that predicts with intervals),
:mod:`forecast.skill` (NSE, KGE, skill against persistence, POD/FAR/CSI),
:mod:`forecast.series` (recorded series and how features read them),
:mod:`forecast.live` (the live forecaster the alert engine feeds) and
:mod:`forecast.store` (fitted models saved as versioned files). ``alerts`` turns forecasts
into ``forecast`` events; ``dashboards`` draws them.
"""
