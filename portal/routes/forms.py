"""Form classes (Flask-WTF): server-side validation with messages per field."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    EqualTo,
    Length,
    Optional,
    Regexp,
    ValidationError,
)

from portal.services.passwords import MAX_LENGTH

# Intranet addresses (name@corp.local) are fine: only the shape is checked.
EMAIL_SHAPE = Regexp(re.compile(r"^[^@\s]+@[^@\s]+$"), message="Enter a valid email address.")


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


ROLES = [("admin", "Admin"), ("accountant", "Accountant"), ("viewer", "Viewer")]
ROLE_CHOICES = [SelectChoice(value, label) for value, label in ROLES]


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."),
                                            Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."),
                                                     Length(max=MAX_LENGTH)])


class ForgotForm(FlaskForm):
    email = EmailField("Email", filters=[_strip], validators=[
        DataRequired("Enter the email address you sign in with."), Length(max=254)])


class UserCreateForm(FlaskForm):
    email = EmailField("Email", filters=[_strip], validators=[
        DataRequired("Enter an email address."), EMAIL_SHAPE, Length(max=254)])
    name = StringField("Display name", validators=[Optional(), Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="accountant")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class ResetForm(FlaskForm):
    password = PasswordField("New password", validators=[
        DataRequired("Enter a new password."), Length(max=MAX_LENGTH)])
    confirm = PasswordField("Repeat the new password", validators=[
        DataRequired("Repeat the new password."),
        EqualTo("password", "The two passwords differ.")])


class ReauthForm(FlaskForm):
    """A form whose change needs the password entered in the last 10 minutes (SPEC 1.2).

    The password is asked in the form itself (the template shows `reauth_password` while
    `password_recent()` is false), so what else was typed, a key for instance, is sent
    once and never echoed through a separate prompt (routes/reauth.py).
    """

    reauth_password = PasswordField("Your password", validators=[Length(max=MAX_LENGTH)])

    def validate_reauth_password(self, field: PasswordField) -> None:
        from portal.routes.reauth import check_password

        problem = check_password(field.data or "")
        if problem:
            raise ValidationError(problem)


class CwSettingsForm(ReauthForm):
    site = StringField("Site", filters=[_strip], validators=[
        DataRequired("Enter the ConnectWise site, e.g. na.myconnectwise.net."),
        Length(max=255)])
    company_id = StringField("Company id", filters=[_strip], validators=[
        DataRequired("Enter the company id you type on the ConnectWise login screen."),
        Length(max=100)])
    public_key = StringField("Public key", filters=[_strip], validators=[
        DataRequired("Enter the API member's public key."), Length(max=100)])
    private_key = PasswordField("Private key", validators=[Optional(), Length(max=200)])
    client_id = StringField("clientId", filters=[_strip], validators=[
        DataRequired("Enter the clientId issued for this integration."),
        Regexp(re.compile(r"^[0-9A-Fa-f]{8}-?([0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}$"),
               message="The clientId is a GUID such as 3a7f2c1e-9b4d-4e8a-a1c2-5d6e7f8a9b0c."),
    ])
    verify_tls = BooleanField("Verify the TLS certificate", default=True)


class QboAppForm(ReauthForm):
    client_id = StringField("Client id", filters=[_strip], validators=[
        DataRequired("Enter the Intuit app's client id."), Length(max=200)])
    client_secret = PasswordField("Client secret", validators=[Optional(), Length(max=200)])
    environment = SelectField("Environment", choices=[
        SelectChoice("sandbox", "Intuit sandbox"), SelectChoice("production", "Production"),
        SelectChoice("custom", "Custom discovery URL")], default="sandbox")
    discovery_url = StringField("Discovery URL", filters=[_strip],
                                validators=[Optional(), Length(max=500)])
    api_base_url = StringField("API base URL", filters=[_strip],
                               validators=[Optional(), Length(max=500)])
