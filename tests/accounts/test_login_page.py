import re


def test_the_login_page_header_shows_the_app_name_not_the_host(client, db):
    page = client.get("/accounts/login/", HTTP_HOST="127.0.0.1:8000").content.decode()
    brand = re.search(r'<a class="brand"[^>]*>(.*?)</a>', page)
    assert brand
    assert brand[1] == "Claude Runner"
    assert "<title>Log in · Claude Runner</title>" in page
    assert "127.0.0.1:8000" not in page
