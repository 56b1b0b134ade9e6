"""Small things every page shares, and the admin's words."""


def test_the_usage_list_counts_users_in_plain_english(admin_client, django_user_model):
    django_user_model.objects.create_user("bob")
    page = admin_client.get("/admin/usage/userusage/").content.decode()
    assert "2 users&#x27; usage" in page
    assert "usage by user</" not in page  # the count once read "2 usage by user"
    assert "<h1>Usage by user, last 30 days</h1>" in page


def test_every_page_frame_links_the_icon_and_it_is_served(client, admin_client, db):
    for page in (
        client.get("/accounts/login/"),
        client.get("/admin/login/"),
        admin_client.get("/admin/"),
        admin_client.get("/tasks/"),
    ):
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in (
            page.content.decode()
        )
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200
    assert b"<svg" in b"".join(icon.streaming_content)


def test_the_admin_loads_our_stylesheet_after_its_responsive_one(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert page.index("admin/css/responsive.css") < page.index("css/admin/site.css")
