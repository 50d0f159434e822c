"""Destinations: one module each, the same small interface (see base.py).

Modules are imported lazily so that collect, which needs none of them, starts fast.
"""

from __future__ import annotations

import importlib

from tagpipe.destinations.base import Destination

# type key in config -> "module:Class"
REGISTRY: dict[str, str] = {
    "log": "tagpipe.destinations.log:LogDestination",
    "meta": "tagpipe.destinations.meta:MetaCapi",
    "ga4": "tagpipe.destinations.ga4:Ga4MeasurementProtocol",
    "google_ads": "tagpipe.destinations.google_ads:GoogleAds",
    "data_manager": "tagpipe.destinations.data_manager:DataManager",
    "tiktok": "tagpipe.destinations.tiktok:TikTokEvents",
    "webhook": "tagpipe.destinations.webhook:Webhook",
    "pinterest": "tagpipe.destinations.pinterest:PinterestConversions",
    "snapchat": "tagpipe.destinations.snapchat:SnapchatConversions",
    "reddit": "tagpipe.destinations.reddit:RedditConversions",
    "linkedin": "tagpipe.destinations.linkedin:LinkedInConversions",
    "microsoft_ads": "tagpipe.destinations.microsoft_ads:MicrosoftUetConversions",
}


def destination_class(type_: str) -> type[Destination]:
    target = REGISTRY[type_]
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
