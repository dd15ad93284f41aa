<div class="widget">
    <div class="widget-content">
        <p>{_ A backup of the database and the uploaded files can be made every night. _}</p>

        {% if is_config_locked %}
            <p class="alert alert-info">
                <i class="fa fa-info-circle"></i>
                {_ The backup settings come from the Zotonic configuration and cannot be changed here. _}
            </p>
            <p>{_ Nightly backup: _}
                <b>
                {% if m.backup.daily_dump == "2" %}{_ Make a daily backup of the database. _}
                {% elseif m.backup.daily_dump == "1" %}{_ Make a daily backup of the database and uploaded files. _}
                {% else %}{_ Do not make a daily backup. _}
                {% endif %}
                </b>
            </p>
        {% else %}
            {% with m.backup.daily_dump as daily %}
            <div class="radio">
                <label>
                    <input id="backup_daily0" name="backup_daily" type="radio" value="0"
                           {% if daily == "0" %}checked="checked"{% endif %}>
                    {_ Do not make a daily backup. _}
                </label>
            </div>
            <div class="radio">
                <label>
                    <input id="backup_daily2" name="backup_daily" type="radio" value="2"
                           {% if daily == "2" %}checked="checked"{% endif %}>
                    {_ Make a daily backup of the database. _}
                </label>
            </div>
            <div class="radio{% if is_filestore_enabled %} disabled text-muted{% endif %}">
                <label>
                    <input id="backup_daily1" name="backup_daily" type="radio" value="1"
                           {% if is_filestore_enabled %}disabled{% elseif daily == "1" %}checked="checked"{% endif %}>
                    {_ Make a daily backup of the database and uploaded files. _}
                </label>
            </div>
            {% wire id="backup_daily0" postback=`config_backup_daily` %}
            {% wire id="backup_daily2" postback=`config_backup_daily` %}
            {% if not is_filestore_enabled %}
                {% wire id="backup_daily1" postback=`config_backup_daily` %}
            {% endif %}
            {% endwith %}
        {% endif %}

        {% if is_filestore_enabled %}
            <p class="help-block">
                <i class="fa fa-info-circle"></i>
                {_ The cloud filestore is enabled: database backups are uploaded to it, and the uploaded files are not backed up locally. _}
            </p>
        {% endif %}

        <hr>

        <p>{_ Backups can be encrypted with a password, which makes it safer to keep copies on other servers. _}</p>

        {% if is_config_locked %}
            <p>{_ Encryption: _}
                <b>{% if m.backup.encrypt_backups %}{_ Encrypt backups. _}{% else %}{_ Do not encrypt backups. _}{% endif %}</b>
            </p>
        {% else %}
            <div class="checkbox">
                <label>
                    <input id="encrypt_backups" name="encrypt_backups" type="checkbox" value="1"
                           {% if m.backup.encrypt_backups %}checked="checked"{% endif %}>
                    {_ Encrypt backups _}
                </label>
                {% wire id="encrypt_backups" postback=`config_encrypt_backups` %}
            </div>
        {% endif %}

        {% if m.backup.encrypt_backups or not is_config_locked %}
            <p class="encryption-extra-explanation">
                <strong>{_ Note: _}</strong>
                <mark>{_ Keep the encryption password in a safe place outside this server. _}</mark>
                {_ It is in the _} <a href="{% url admin_config %}">{_ System Configuration _}</a>
                {_ or in the Zotonic configuration files. _}
            </p>
        {% endif %}
    </div>
</div>
