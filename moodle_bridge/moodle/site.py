"""Site information: ``core_webservice_get_site_info``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from moodle_bridge.moodle.api import Caller, MoodleModel, parse

__all__ = ["AdvancedFeature", "SiteInfo", "get_site_info"]


class AdvancedFeature(MoodleModel):
    """A site feature switch (``enablecompletion``, ``enablecompetencies``...); 1 is on."""

    name: str
    value: int


def _function_names(value: Any) -> Any:
    if isinstance(value, list):
        return [item.get("name", item) if isinstance(item, dict) else item for item in value]
    return value


class SiteInfo(MoodleModel):
    """Who the token belongs to, the Moodle release, and the functions the token may call."""

    sitename: str
    siteurl: str
    username: str
    userid: int
    firstname: str
    lastname: str
    fullname: str
    lang: str
    #: Names of the web-service functions in the token's service.
    functions: Annotated[list[str], BeforeValidator(_function_names)]
    release: str | None = None
    version: str | None = None
    siteid: int | None = None
    userissiteadmin: bool | None = None
    theme: str | None = None
    sitecalendartype: str | None = None
    advancedfeatures: list[AdvancedFeature] = Field(default_factory=list)

    def feature_enabled(self, name: str) -> bool | None:
        """Whether the advanced feature ``name`` is on; None when Moodle did not list it."""
        for feature in self.advancedfeatures:
            if feature.name == name:
                return feature.value == 1
        return None


def get_site_info(caller: Caller) -> SiteInfo:
    """Return the site and token information (the cheapest call that proves a token works)."""
    wsfunction = "core_webservice_get_site_info"
    return parse(wsfunction, SiteInfo, caller.call(wsfunction))
