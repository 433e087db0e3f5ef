//! Where findings are raised (the `FindingSource` port): GuardDuty's detectors and findings, as
//! strict as the API. A finding is held only once a test raises it (`raise`, which `deliver` and
//! `run` do for the payload they send, as GuardDuty would have; a Security Hub import is raised
//! as the GuardDuty finding it came from); a payload sent with `deliver_unraised` is one no
//! service ever raised.

use killswitch::error::Error;
use killswitch::ports::FindingSource;
use serde_json::{Value, json};

use super::FakeCloud;

/// The detector every fixture in events/ names.
const FIXTURE_DETECTOR: &str = "12abc34d567e8fa901bc2d34e56789f0";

impl FakeCloud {
    /// What GuardDuty (or Security Hub) raised: the payload's finding(s), held as the source
    /// holds them. Other payloads are not findings and raise nothing.
    pub fn raise(&self, payload: &Value) {
        let mut s = self.state.lock().unwrap();
        match payload.get("source").and_then(Value::as_str) {
            Some("aws.guardduty") => {
                if let Some(detail) = payload.get("detail") {
                    s.raised.push(detail.clone());
                }
            }
            Some("aws.securityhub") => {
                let findings = payload
                    .pointer("/detail/findings")
                    .and_then(Value::as_array);
                s.raised
                    .extend(findings.into_iter().flatten().map(guardduty_detail_of));
            }
            _ => {}
        }
    }

    /// The account's detector in every Region (`None`: GuardDuty is not enabled).
    pub fn set_detector(&self, detector: Option<&str>) {
        self.state.lock().unwrap().detector = Some(detector.map(str::to_owned));
    }

    fn detector_now(&self) -> Option<String> {
        let s = self.state.lock().unwrap();
        match &s.detector {
            Some(d) => d.clone(),
            None => Some(FIXTURE_DETECTOR.to_owned()),
        }
    }
}

impl FindingSource for FakeCloud {
    async fn detector(&self, region: &str) -> Result<Option<String>, Error> {
        self.rtt().await;
        drop(self.enter("guardduty:ListDetectors", region)?);
        Ok(self.detector_now())
    }

    async fn guardduty_finding(
        &self,
        region: &str,
        detector: &str,
        finding_id: &str,
    ) -> Result<Option<Value>, Error> {
        self.rtt().await;
        let ours = self.detector_now();
        let s = self.enter("guardduty:GetFindings", finding_id)?;
        if ours.as_deref() != Some(detector) {
            // GuardDuty answers 400 for a detector the account does not own.
            return Err(Error::Aws {
                op: "guardduty:GetFindings",
                code: Some("BadRequestException".into()),
                source: "The request is rejected because the input detectorId is not owned by the current account.".into(),
            });
        }
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(s.raised
            .iter()
            .rev()
            .find(|f| {
                text(f, "id").as_deref() == Some(finding_id)
                    && text(f, "region").as_deref() == Some(region)
            })
            .cloned())
    }
}

/// The GuardDuty finding a Security Hub import came from (the fields the function reads back):
/// its ID is the last part of the import's ID, GuardDuty's finding ARN.
pub fn guardduty_detail_of(asff: &Value) -> Value {
    let arn = asff["Id"].as_str().unwrap_or_default();
    let id = arn.rsplit_once("/finding/").map_or("", |(_, f)| f);
    let resource = asff["Resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["Type"] == "AwsIamAccessKey"))
        .cloned()
        .unwrap_or_default();
    let key = resource["Id"]
        .as_str()
        .and_then(|i| i.rsplit_once("AWS::IAM::AccessKey:"))
        .map_or("", |(_, k)| k);
    let details = &resource["Details"]["AwsIamAccessKey"];
    let name = if details["PrincipalName"].is_null() {
        details["UserName"].clone()
    } else {
        details["PrincipalName"].clone()
    };
    let finding_type = asff["Types"][0]
        .as_str()
        .map(|t| t.rsplit('/').next().unwrap_or(t).replacen('-', "/", 1));
    json!({
        "id": id,
        "arn": arn,
        "type": finding_type,
        "accountId": asff["AwsAccountId"],
        "region": asff["Region"],
        "updatedAt": asff["UpdatedAt"],
        "resource": {
            "resourceType": "AccessKey",
            "accessKeyDetails": {
                "accessKeyId": key,
                "principalId": details["PrincipalId"],
                "userName": name,
                "userType": details["PrincipalType"],
            },
        },
        "service": {},
    })
}
