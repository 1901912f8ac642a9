"""Running an admin changelist action the way a person's browser does."""

from django.urls import reverse


def run_admin_action(client, model: str, action: str, *records) -> list[str]:
    """Post ``action`` on ``records`` to the ``app_model`` changelist; the messages shown."""
    response = client.post(
        reverse(f"admin:{model}_changelist"),
        {"action": action, "_selected_action": [r.pk for r in records]},
        follow=True,
    )
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]
