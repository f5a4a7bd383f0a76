use serde_json::{Value, json};

use crate::helpers::{TenantCtx, TestApp, spawn_app};

async fn assistant_with_docs(
    app: &TestApp,
    t: &TenantCtx,
    tm: &str,
    name: &str,
    docs: &[(&str, &str)],
) -> String {
    let asst = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/assistants"),
            json!({"name": name}),
        )
        .await;
    assert_eq!(asst.status, 201, "{}", asst.text);
    let id = asst.id();
    for (file, text) in docs {
        assert_eq!(
            app.upload(&t.caller, &id, file, text.as_bytes().to_vec())
                .await
                .status,
            201
        );
    }
    let batch = app.process_batch(&t.caller, &id).await;
    assert_eq!(batch.body["failed"], 0, "{}", batch.text);
    id
}

async fn teammate(app: &TestApp, t: &TenantCtx, config: Value) -> String {
    let ws = app
        .post(
            &t.caller,
            &format!("/api/v1/tenants/{}/workspaces", t.id),
            json!({"name": "ws"}),
        )
        .await
        .id();
    let tm = app
        .post(
            &t.caller,
            &format!("/api/v1/workspaces/{ws}/teammates"),
            json!({"name": "tm", "orchestration_config": config}),
        )
        .await;
    assert_eq!(tm.status, 201, "{}", tm.text);
    tm.id()
}

async fn ask(app: &TestApp, t: &TenantCtx, path: &str, config: Value) -> Value {
    assert_eq!(
        app.patch(&t.caller, path, json!({"orchestration_config": config}))
            .await
            .status,
        200
    );
    let resp = app
        .post(
            &t.caller,
            &format!("{path}/query"),
            json!({"query": "Tell me about the warehouse"}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.body
}

fn source_files(resp: &Value) -> Vec<String> {
    resp["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["file_name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_query_answers_from_the_right_document() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let tm = teammate(&app, &t, Value::Null).await;
    assistant_with_docs(&app, &t, &tm, "billing", &[
        ("invoices.md", "# Invoices\nInvoices are payable within 45 days of delivery. Late payments incur a fee."),
        ("office.txt", "The Lyon office opens at 8 am. Parking is available behind the building."),
    ])
    .await;

    let resp = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/query"),
            json!({"query": "Within how many days are invoices payable?"}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let body = &resp.body;
    assert!(
        body["answer"].as_str().unwrap().contains("45 days"),
        "{}",
        resp.text
    );
    assert_eq!(body["answer"], body["result"]);
    assert_eq!(source_files(body)[0], "invoices.md");
    assert_eq!(
        (
            body["mode"].as_str(),
            body["model"].as_str(),
            body["strategy"].as_str()
        ),
        (Some("fast"), Some("extractive"), Some("weighted"))
    );
    assert_eq!(body["teammate_id"], tm);
    assert_eq!(body["query"], "Within how many days are invoices payable?");
    assert!(
        body["query_tags"]
            .as_array()
            .unwrap()
            .contains(&json!("invoices"))
    );
    assert!(body["processing_time_ms"].is_u64());
    assert_eq!(body["responses"].as_array().unwrap().len(), 1);
    assert_eq!(body["selected_assistant_ids"].as_array().unwrap().len(), 1);

    let parking = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/query"),
            json!({"query": "Where is parking?", "mode": "reasoning"}),
        )
        .await;
    assert!(
        parking.body["answer"]
            .as_str()
            .unwrap()
            .contains("Parking is available"),
        "{}",
        parking.text
    );
    assert_eq!(source_files(&parking.body)[0], "office.txt");
    assert_eq!(parking.body["mode"], "reasoning");

    let nothing = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/query"),
            json!({"query": "Who painted the Mona Lisa?"}),
        )
        .await;
    assert_eq!(nothing.status, 200);
    assert!(
        nothing.body["sources"].as_array().unwrap().is_empty(),
        "{}",
        nothing.text
    );
}

#[tokio::test]
async fn orchestration_strategies_route_to_assistants() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let tm = teammate(&app, &t, Value::Null).await;
    let first = assistant_with_docs(
        &app,
        &t,
        &tm,
        "first",
        &[("a.txt", "The warehouse code is ALPHA-7.")],
    )
    .await;
    let second = assistant_with_docs(
        &app,
        &t,
        &tm,
        "second",
        &[("b.txt", "The warehouse manager is Dana.")],
    )
    .await;
    let path = format!("/api/v1/teammates/{tm}");
    // Default weighted, one assistant: the oldest on ties.
    let body = ask(&app, &t, &path, json!({})).await;
    assert_eq!(body["selected_assistant_ids"], json!([first]));
    assert!(body["result"].as_str().unwrap().contains("ALPHA-7"));

    // Weights by name pick the heavier one; by id wins over by name.
    let body = ask(&app, &t, &path, json!({"weights_by_name": {"second": 2.0}})).await;
    assert_eq!(body["selected_assistant_ids"], json!([second]));
    assert_eq!(body["responses"][0]["weight"], 2.0);
    let body = ask(
        &app,
        &t,
        &path,
        json!({"weights_by_name": {"second": 2.0}, "weights": {first.clone(): 3.0}}),
    )
    .await;
    assert_eq!(body["selected_assistant_ids"], json!([first]));

    // Sequential: all, in order; answers joined by a newline.
    let body = ask(&app, &t, &path, json!({"strategy": "sequential"})).await;
    assert_eq!(body["selected_assistant_ids"], json!([first, second]));
    let result = body["result"].as_str().unwrap();
    assert!(
        result.contains("ALPHA-7") && result.contains("Dana") && result.contains('\n'),
        "{result}"
    );
    let files = source_files(&body);
    assert!(files.contains(&"a.txt".to_string()) && files.contains(&"b.txt".to_string()));

    // Parallel with assistant_ids restricting and ordering.
    let body = ask(
        &app,
        &t,
        &path,
        json!({"strategy": "parallel", "assistant_ids": [second, first]}),
    )
    .await;
    assert_eq!(body["strategy"], "parallel");
    assert_eq!(body["selected_assistant_ids"], json!([second, first]));
    assert_eq!(body["responses"][0]["assistant_name"], "second");

    // Weighted with two answering assistants reports both; result is the top one.
    let body = ask(
        &app,
        &t,
        &path,
        json!({"max_assistants": 2, "weights_by_name": {"second": 5}}),
    )
    .await;
    assert_eq!(body["selected_assistant_ids"], json!([second, first]));
    assert_eq!(body["result"], body["responses"][0]["answer"]);
}

#[tokio::test]
async fn query_errors() {
    let app = spawn_app().await;
    let t = app.create_tenant("t").await;
    let tm = teammate(&app, &t, Value::Null).await;
    let path = format!("/api/v1/teammates/{tm}/query");
    let no_assistants = app.post(&t.caller, &path, json!({"query": "hello"})).await;
    assert_eq!(
        (no_assistants.status, no_assistants.body["detail"].as_str()),
        (404, Some("Teammate has no assistants to answer"))
    );
    assistant_with_docs(&app, &t, &tm, "a", &[]).await;
    let bad_mode = app
        .post(&t.caller, &path, json!({"query": "hello", "mode": "turbo"}))
        .await;
    assert_eq!(
        (bad_mode.status, bad_mode.locs()),
        (422, vec![r#"["body","mode"]"#.to_string()])
    );
    let empty = app.post(&t.caller, &path, json!({"query": "  "})).await;
    assert_eq!(
        (empty.status, empty.locs()),
        (422, vec![r#"["body","query"]"#.to_string()])
    );
    let missing = app.post(&t.caller, &path, json!({})).await;
    assert_eq!(missing.body["detail"][0]["type"], "missing");
    let ok = app.post(&t.caller, &path, json!({"query": "hello"})).await;
    assert_eq!(ok.status, 200, "an empty knowledge base still answers");
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        app.post(
            &t.caller,
            &format!("/api/v1/teammates/{unknown}/query"),
            json!({"query": "x"})
        )
        .await
        .status,
        404
    );
    // Restricting to assistants that do not exist leaves nobody to answer.
    app.patch(
        &t.caller,
        &format!("/api/v1/teammates/{tm}"),
        json!({"orchestration_config": {"assistant_ids": [unknown]}}),
    )
    .await;
    assert_eq!(
        app.post(&t.caller, &path, json!({"query": "hello"}))
            .await
            .status,
        404
    );
}
