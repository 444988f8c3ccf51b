//! The console over plain HTTP: redirects to sign in, CSRF on forms, safe return paths, HTML 404.

mod common;

use common::{PASSWORD, TestApp};
use custody_domain::role::Role;
use reqwest::StatusCode;
use reqwest::redirect::Policy;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

#[tokio::test]
async fn pages_send_strangers_to_sign_in_and_come_back() {
    let app = TestApp::spawn().await;
    let response = no_redirects().get(format!("{}/people?q=ruiz", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/login?next=%2Fpeople%3Fq%3Druiz");
    let login = reqwest::get(format!("{}/login?next=//evil.example/x", app.base)).await.unwrap().text().await.unwrap();
    assert!(login.contains("name=\"next\" value=\"/\""), "no return to another host");
}

#[tokio::test]
async fn console_forms_without_the_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    app.agency("AAA", "Alpha Agency").await;
    app.user_with_token("desk@x.example", Role::ServiceDesk, None).await;
    let (cookie, csrf) = app.sign_in("desk@x.example", PASSWORD).await;
    let before = app.audit_count().await;
    let post = |form: Vec<(&'static str, String)>| {
        no_redirects()
            .post(format!("{}/people", app.base))
            .header("cookie", format!("custody_session={cookie}"))
            .form(&form)
            .send()
    };
    let base = || vec![("agency", "AAA".to_string()), ("given_name", "Eve".into()), ("family_name", "Ng".into())];
    assert_eq!(post(base()).await.unwrap().status(), StatusCode::FORBIDDEN);
    let mut wrong = base();
    wrong.push(("csrf_token", "guess".into()));
    assert_eq!(post(wrong).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count().await, before);
    let mut right = base();
    right.push(("csrf_token", csrf));
    let created = post(right).await.unwrap();
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert!(created.headers()["location"].to_str().unwrap().starts_with("/people/"));
    assert_eq!(app.audit_count().await, before + 1);
}

#[tokio::test]
async fn unknown_pages_are_an_html_404_for_browsers_and_a_problem_for_machines() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let page = client.get(format!("{}/nowhere", app.base)).header("accept", "text/html").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.text().await.unwrap().contains("Page not found"));
    let machine = client.get(format!("{}/nowhere", app.base)).send().await.unwrap();
    assert_eq!(machine.headers()["content-type"], "application/problem+json");
    let css = client.get(format!("{}/static/custody.css", app.base)).send().await.unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}
