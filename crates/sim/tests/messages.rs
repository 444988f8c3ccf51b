//! The messages a simulated device sends, read as the server reads them: check-in bodies with
//! `apple_mdm::checkin::Checkin::parse`, signatures with
//! `apple_mdm::signature::verify_mdm_signature`, and enrollment profiles built by
//! `apple_mdm::profile` read back by the simulator.

use apple_mdm::checkin::{Checkin, CheckinMessage as Received};
use apple_mdm::profile::{EnrollmentProfile as Built, Mdm, Scep, sign_profile};
use apple_mdm::push::Topic;
use apple_mdm::report::{Report, Status};
use apple_mdm::signature::{SignatureError, verify_mdm_signature};
use base64::Engine as _;
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use custody_sim::profile::ProfileError;
use custody_sim::spec::luhn_valid;
use custody_sim::{CheckinMessage, DeviceKind, DeviceSpec, EnrollmentProfile, Identity, MdmEndpoints, SimDevice};
use der::Decode;

const TOPIC: &str = "com.apple.mgmt.External.11111111-2222-3333-4444-555555555555";

fn offline(kind: DeviceKind) -> SimDevice {
    let spec = DeviceSpec::numbered(kind, 9);
    let endpoints = MdmEndpoints {
        server_url: "http://127.0.0.1:9/mdm/connect".into(),
        check_in_url: "http://127.0.0.1:9/mdm/checkin".into(),
        topic: TOPIC.into(),
        sign_message: true,
    };
    let identity = Identity::self_signed(&spec.udid).unwrap();
    SimDevice::offline(&reqwest::Client::new(), spec, endpoints, identity)
}

#[test]
fn signatures_verify_over_the_exact_body_with_the_identity_certificate() {
    let device = offline(DeviceKind::IPhone);
    let body = device.idle_body();
    let header = device.sign(&body).unwrap();
    let signer = verify_mdm_signature(&header, &body).expect("verifies");
    assert_eq!(signer.der(), device.identity().certificate_der());

    let mut altered = body.clone();
    altered.extend_from_slice(b"\n");
    assert!(matches!(verify_mdm_signature(&header, &altered), Err(SignatureError::BadSignature(_))));

    // Detached, one signer, SHA-256.
    let der = base64::engine::general_purpose::STANDARD.decode(&header).unwrap();
    let signed: SignedData = ContentInfo::from_der(&der).unwrap().content.decode_as().unwrap();
    assert!(signed.encap_content_info.econtent.is_none(), "detached");
    assert_eq!(signed.signer_infos.0.len(), 1);
    let digest = &signed.signer_infos.0.get(0).unwrap().digest_alg.oid;
    assert_eq!(digest.to_string(), "2.16.840.1.101.3.4.2.1", "SHA-256");
}

#[test]
fn check_in_bodies_are_apples() {
    let device = offline(DeviceKind::IPhone);
    let spec = &device.state().spec;

    let authenticate = Checkin::parse(&device.checkin_body(CheckinMessage::Authenticate)).unwrap();
    assert_eq!(authenticate.enrollment.device_key(), spec.udid);
    let Received::Authenticate(a) = authenticate.message else { panic!("Authenticate") };
    assert_eq!(a.topic.as_str(), TOPIC);
    assert_eq!(a.serial_number.as_deref(), Some(spec.serial_number.as_str()));
    assert!(luhn_valid(a.imei.as_deref().unwrap()));
    assert_eq!(a.product_name.as_deref(), Some("iPhone16,2"));
    assert_eq!(a.model.as_deref(), Some("MU6A3LL/A"));
    assert_eq!(a.model_name.as_deref(), Some("iPhone"));
    assert_eq!(a.device_name.as_deref(), Some(spec.device_name.as_str()));
    assert_eq!((a.os_version.as_deref(), a.build_version.as_deref()), (Some("18.5"), Some("22F76")));
    assert!(authenticate.extra.is_empty(), "{:?}", authenticate.extra);

    let token = Checkin::parse(&device.checkin_body(CheckinMessage::TokenUpdate)).unwrap();
    let Received::TokenUpdate(t) = token.message else { panic!("TokenUpdate") };
    assert_eq!(t.token.as_bytes(), device.push_token());
    assert_eq!(t.token.as_bytes().len(), 32);
    assert_eq!(t.push_magic.as_str(), device.push_magic());
    assert!(!t.unlock_token.unwrap().is_empty());
    assert!(!t.awaiting_configuration);

    let check_out = Checkin::parse(&device.checkin_body(CheckinMessage::CheckOut)).unwrap();
    assert!(matches!(check_out.message, Received::CheckOut { .. }));

    let ipad = offline(DeviceKind::IPad);
    let Received::Authenticate(a) = Checkin::parse(&ipad.checkin_body(CheckinMessage::Authenticate)).unwrap().message
    else {
        panic!("Authenticate")
    };
    assert_eq!((a.imei, a.meid, a.product_name.as_deref()), (None, None, Some("iPad14,1")));

    let idle = Report::parse(&device.idle_body()).unwrap();
    assert_eq!(idle.status, Status::Idle);
    assert_eq!(idle.enrollment.device_key(), spec.udid);
}

fn built_profile() -> Built {
    Built {
        identifier: "gov.example.enroll".into(),
        display_name: "Enroll".into(),
        organization: "Custody".into(),
        description: None,
        scep: Scep::new(
            "http://127.0.0.1:8080/scep",
            Some("challenge-1".into()),
            vec![("O".into(), "Custody".into()), ("CN".into(), "device".into())],
        ),
        mdm: Mdm::new("http://127.0.0.1:8080/mdm/connect", None, Topic::new(TOPIC).unwrap()),
        ca_certificate_der: Identity::self_signed("CA").unwrap().certificate_der().to_vec(),
    }
}

#[test]
fn enrollment_profiles_are_read_plain_or_signed() {
    let built = built_profile();
    let xml = built.build().to_xml();
    let profile = EnrollmentProfile::parse(&xml).unwrap();
    assert_eq!(profile.identifier, "gov.example.enroll");
    assert_eq!(profile.scep.url, "http://127.0.0.1:8080/scep");
    assert_eq!(profile.scep.challenge.as_deref(), Some("challenge-1"));
    assert_eq!(profile.scep.subject, vec![("O".into(), "Custody".into()), ("CN".into(), "device".into())]);
    assert_eq!(profile.scep.key_size, 2048);
    assert_eq!(profile.mdm.server_url, "http://127.0.0.1:8080/mdm/connect");
    assert_eq!(profile.mdm.check_in_url, profile.mdm.server_url, "no CheckInURL: the server URL");
    assert_eq!(profile.mdm.topic, TOPIC);
    assert!(profile.mdm.sign_message);
    assert!(profile.mdm.identity_certificate_uuid.eq_ignore_ascii_case(&profile.scep.payload_uuid));
    assert_eq!(profile.root_certificate_der.as_deref(), Some(built.ca_certificate_der.as_slice()));
    assert!(profile.signer.is_none());

    let signer = Identity::self_signed("Profile signer").unwrap();
    let signed = sign_profile(&xml, signer.certificate(), signer.key(), &[]).unwrap();
    let profile = EnrollmentProfile::parse(&signed).unwrap();
    assert_eq!(profile.signer.unwrap().der(), signer.certificate_der());
    assert_eq!(profile.xml, xml);

    let mut tampered = signed.clone();
    let at = tampered.windows(5).position(|w| w == b"scep<").unwrap_or(tampered.len() / 2);
    tampered[at] ^= 0x01;
    assert!(matches!(EnrollmentProfile::parse(&tampered), Err(ProfileError::BadSignature(_))));
    assert!(matches!(EnrollmentProfile::parse(b"<plist><array/></plist>"), Err(ProfileError::Malformed(_))));
}

#[test]
fn a_profile_whose_identity_is_not_its_scep_payload_is_refused() {
    let xml = String::from_utf8(built_profile().build().to_xml()).unwrap();
    let profile = EnrollmentProfile::parse(xml.as_bytes()).unwrap();
    let at = xml.find("<key>IdentityCertificateUUID</key>").unwrap();
    let (head, tail) = xml.split_at(at);
    let broken = format!(
        "{head}{}",
        tail.replacen(&profile.mdm.identity_certificate_uuid, "00000000-0000-0000-0000-000000000000", 1)
    );
    assert!(matches!(EnrollmentProfile::parse(broken.as_bytes()), Err(ProfileError::IdentityMismatch(_))));
}
