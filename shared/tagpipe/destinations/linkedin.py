"""LinkedIn Conversions API: canonical events -> POST /rest/conversionEvents.

    POST {endpoint}/rest/conversionEvents      Authorization: Bearer <token>   LinkedIn-Version: YYYYMM
                                               X-Restli-Protocol-Version: 2.0.0
    one event:  {"conversion": "urn:lla:llaPartnerConversion:<rule>", "conversionHappenedAt": <ms>,
                 "conversionValue": {"currencyCode", "amount": "<decimal string>"}, "eventId",
                 "user": {"userIds": [{"idType", "idValue"}], "userInfo": {...}}}           -> 201 Created
    a batch:    X-RestLi-Method: BATCH_CREATE, {"elements": [<event>, ...]}   -> 200 {"elements": [{"status"}]}

Vendor facts ([doc] https://learn.microsoft.com/en-us/linkedin/marketing/integrations/ads-reporting/conversions-api
and .../conversions-api-schema; [code] stape-io/linkedin-tag template.js @61673de, LinkedIn's listed partner):
- Versioned API: every call carries LinkedIn-Version (YYYYMM; the template pins 202604; a version is sunset
  about a year after release: the Conversions FAQ's notice "Marketing Version 202511 ... sunset on November 16,
  2026") and X-Restli-Protocol-Version 2.0.0.
- conversionHappenedAt is epoch **milliseconds**; events older than 90 days are refused ([secondary]
  Salesforce's LinkedIn CAPI connector: "older than 90 days ... automatically rejected").
- user.userIds needs at least one id: SHA256_EMAIL (tagpipe.hashing.linkedin), LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID
  (the `li_fat_id` landing parameter / cookie, as it came); userInfo, when sent, needs firstName and lastName
  both (the template refuses otherwise), in clear, with companyName, title, countryCode.
- conversionValue.amount is a string; eventId dedups with the Insight Tag's event id.
- Batches of up to 5,000 events ([secondary] RudderStack and Salesforce LinkedIn docs).
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field, field_validator

from tagpipe.destinations.base import (
    AUTH_STATUSES,
    Batch,
    Destination,
    HttpDestinationSettings,
    Prepared,
    Result,
    VendorRequest,
    Verdict,
    chunks,
    classify_http,
    response_json,
    retry_after_seconds,
)
from tagpipe.errors import InvalidInput
from tagpipe.hashing import country_alpha2
from tagpipe.hashing.linkedin import linkedin_email_hash
from tagpipe.models import DeliveryTask, Event

MAX_AGE_SECONDS = 90 * 24 * 3600
RULE_URN = "urn:lla:llaPartnerConversion:"

# --------------------------------------------------------------------------- error table (data)
# HTTP status -> verdict: LinkedIn's API error handling page ([doc] learn.microsoft.com/linkedin/shared/api-guide/
# concepts/error-handling: 400 bad request, 401 unauthorized (expired/invalid token), 403 forbidden (missing
# permission rw_conversions or ad account role), 404, 422 unprocessable, 426 "Requested version is not active"
# (upgrade LinkedIn-Version), 429 throttled, 500/503/504 retry) [unverified: the page's table was not in the
# excerpts read this session; the statuses are the ones LinkedIn's partner templates branch on].
LINKEDIN_STATUS: dict[int, tuple[Verdict, str]] = {
    400: (Verdict.PERMANENT, "LinkedIn refused the conversion event"),
    401: (Verdict.PERMANENT, "LinkedIn refused the access token"),
    403: (Verdict.PERMANENT, "the token lacks rw_conversions or a role on the ad account"),
    404: (Verdict.PERMANENT, "no such conversion rule"),
    422: (Verdict.PERMANENT, "LinkedIn could not process the conversion event"),
    426: (Verdict.PERMANENT, "the LinkedIn-Version is no longer active: raise linkedin_version"),
    429: (Verdict.THROTTLE, "rate limited"),
}



class LinkedInSettings(HttpDestinationSettings):
    access_token_env: str = "LINKEDIN_ACCESS_TOKEN"
    endpoint: str = "https://api.linkedin.com"
    linkedin_version: str = Field("202604", pattern=r"^\d{6}$", description="the LinkedIn-Version header (YYYYMM)")
    conversion_rules: dict[str, str] = Field(
        min_length=1, description='GA4 event name -> conversion rule id, e.g. { purchase = "104012" }'
    )
    event_map: dict[str, str] = Field(default_factory=dict)  # GA4 name -> conversion type, over mappings/linkedin.toml

    @field_validator("conversion_rules")
    @classmethod
    def _numeric_rules(cls, rules: dict[str, str]) -> dict[str, str]:
        bad = sorted(name for name, rule in rules.items() if not rule.isdigit())
        if bad:
            raise ValueError(f"the rule ids of {bad} are not numbers (the id Campaign Manager shows for the rule)")
        return rules


class LinkedInConversions(Destination):
    type = "linkedin"
    max_batch = 5000
    conversions_only = True
    Settings = LinkedInSettings
    settings: LinkedInSettings

    # ------------------------------------------------------------------ transform side
    def prepare(self, event: Event) -> Prepared | None:
        rule = self.settings.conversion_rules.get(event.vendor_event_name or event.name)
        if rule is None:
            return None
        if event.timestamp < self.now() - MAX_AGE_SECONDS:
            raise InvalidInput("linkedin:event_too_old", "LinkedIn accepts conversions up to 90 days old")
        user_ids: list[dict[str, str]] = []
        identifiers: list[str] = []
        if hashed := linkedin_email_hash(event.user_data.email):
            user_ids.append({"idType": "SHA256_EMAIL", "idValue": hashed})
            identifiers.append("em")
        if event.click_ids.li_fat_id:
            user_ids.append({"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": event.click_ids.li_fat_id})
            identifiers.append("li_fat_id")
        if not user_ids:
            raise InvalidInput("linkedin:no_identifier", "LinkedIn needs an email or the li_fat_id click id")
        user: dict[str, Any] = {"userIds": user_ids}
        if info := self._user_info(event):
            user["userInfo"] = info
            identifiers += ["fn", "ln"]
        payload: dict[str, Any] = {
            "conversion": f"{RULE_URN}{rule}",
            "conversionHappenedAt": int(round(event.timestamp * 1000)),
        }
        ecommerce = event.ecommerce
        if ecommerce.currency and ecommerce.value is not None:
            payload["conversionValue"] = {"currencyCode": ecommerce.currency.upper(), "amount": _amount(ecommerce.value)}
        payload["eventId"] = event.event_id
        payload["user"] = user
        name = self.event_map.get(event.name, event.vendor_event_name or event.name)
        return Prepared(name, payload, identifiers)

    @staticmethod
    def _user_info(event: Event) -> dict[str, str] | None:
        address = event.user_data.address
        first, last = (address.first_name or "").strip(), (address.last_name or "").strip()
        if not (first and last):
            return None  # LinkedIn: firstName and lastName come together or not at all
        info = {"firstName": first, "lastName": last}
        for key, param in (("companyName", "company_name"), ("title", "job_title")):
            value = event.params.get(param)
            if isinstance(value, str) and value.strip():
                info[key] = value.strip()
        if country := country_alpha2(address.country):
            info["countryCode"] = country
        return info

    # ------------------------------------------------------------------ deliver side
    def build_requests(self, tasks: list[DeliveryTask]) -> Batch:
        token = self.required_secret("access_token", "create an access token with the rw_conversions scope (LinkedIn Developer Portal)")
        s = self.settings
        url = f"{s.endpoint.rstrip('/')}/rest/conversionEvents"
        headers = {"Authorization": f"Bearer {token}", "LinkedIn-Version": s.linkedin_version,
                   "X-Restli-Protocol-Version": "2.0.0"}  # fmt: skip
        batch = Batch()
        for part in chunks(tasks, self.max_batch):
            uids = [t.event_uid for t in part]
            if len(part) == 1:
                batch.requests.append(VendorRequest("POST", url, uids, headers=headers, json=part[0].payload))
            else:
                batch.requests.append(VendorRequest("POST", url, uids, headers={**headers, "X-RestLi-Method": "BATCH_CREATE"},
                                                    json={"elements": [t.payload for t in part]}))  # fmt: skip
        return batch

    def classify(self, request: VendorRequest, response: httpx.Response | None, error: Exception | None) -> Result:
        if error is not None or response is None:
            return classify_http(response, error)
        status = response.status_code
        body = response_json(response)
        if 200 <= status < 300:
            elements = body.get("elements") if isinstance(body, dict) else None
            per_event: dict[str, tuple[Verdict, str, str]] = {}
            if isinstance(elements, list):
                for uid, element in zip(request.event_uids, elements, strict=False):
                    code = element.get("status") if isinstance(element, dict) else None
                    if isinstance(code, int) and not 200 <= code < 300:
                        verdict, description = self._status(code)
                        per_event[uid] = (verdict, self._reason(code, verdict), description)
            return Result(Verdict.OK, "ok", f"{len(per_event)} of {len(request.event_uids)} refused" if per_event else "",
                          per_event=per_event)  # fmt: skip
        verdict, description = self._status(status)
        service_code = body.get("serviceErrorCode") if isinstance(body, dict) else None
        if isinstance(service_code, int):
            description += f" (serviceErrorCode {service_code})"
        retry_after = retry_after_seconds(response) if verdict in (Verdict.RETRY, Verdict.THROTTLE) else None
        return Result(verdict, self._reason(status, verdict), description, retry_after)

    @staticmethod
    def _status(status: int) -> tuple[Verdict, str]:
        if status in LINKEDIN_STATUS:
            return LINKEDIN_STATUS[status]
        if status >= 500 or status == 408:
            return Verdict.RETRY, "LinkedIn error"
        return Verdict.PERMANENT, "LinkedIn refused the request"

    @staticmethod
    def _reason(status: int, verdict: Verdict) -> str:
        if status in AUTH_STATUSES:
            return "linkedin:auth"
        if verdict is Verdict.THROTTLE:
            return "linkedin:throttled"
        return f"linkedin:{status}"


def _amount(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
