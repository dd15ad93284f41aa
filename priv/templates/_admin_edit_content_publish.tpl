{% overrules %}

{# Adds "Revert to earlier version..." to the more-actions menu of the edit page. #}
{% block more_actions %}
    {% if id.is_editable %}
        <li>
            <a href="{% url admin_backup_revision id=id %}" id="revert-rsc-action"
               title="{_ Revert to an earlier revision of this page. _}"
               role="menuitem" aria-label="{_ Revert to an earlier revision of this page. _}">
                <span class="glyphicon glyphicon-step-backward"></span> {_ Revert to earlier version... _}
            </a>
        </li>
    {% endif %}
    {% inherit %}
{% endblock %}
